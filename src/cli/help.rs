//! The help texts: the overview (`wxgrades --help`, and after every usage error) and one page
//! per command (`wxgrades COMMAND --help`).

use super::Topic;

pub const USAGE: &str = "wxgrades — grades through a WeChat official account

Usage:
  wxgrades [serve] [--config FILE]     run the server (demo mode when nothing is configured)
  wxgrades demo                        run demo mode: WeChat simulated, sample data
  wxgrades init [FILE]                 write a commented config file (never overwrites)
  wxgrades check [--config FILE]       validate the config (and prove the WeChat credentials)
  wxgrades menu show | push            print / publish the custom menu built from [[menu]]
  wxgrades import roster FILE [--dry-run] [--map MAP] [--preset NAME]
  wxgrades import grades FILE [--dry-run] [--replace-term TERM] [--map MAP] [--preset NAME]
                              [--publish-at \"YYYY-MM-DD HH:MM\"]
  wxgrades admin add NAME [--role admin|registrar|viewer] [--password-stdin]
  wxgrades admin passwd NAME [--password-stdin]        set a new password
  wxgrades admin list | admin remove NAME              list / remove admins
  wxgrades export grades [--term TERM] [-o FILE]       grades as CSV in the import format
  wxgrades backup FILE                 write a consistent copy of the data file (server stopped)
  wxgrades restore [--check] FILE      check a backup and put it in place of the data file
  wxgrades verify-file add FILE        serve WeChat's domain-check file (MP_verify_….txt)
  wxgrades presets list | show NAME | remove NAME      saved column mappings
  wxgrades releases list | publish ID | withdraw ID    scheduled grade releases
  wxgrades --version | --help

Every command takes --config FILE (default wxgrades.toml, or WXGRADES_CONFIG).
Run `wxgrades COMMAND --help` for a command's options.";

pub fn page(topic: Topic) -> &'static str {
    match topic {
        Topic::Serve => "wxgrades serve [--config FILE]\n\nRun the server. Without a config file and WeChat credentials it runs demo mode.",
        Topic::Demo => "wxgrades demo [--config FILE]\n\nRun demo mode: data/demo.redb seeded from the sample data, WeChat simulated under /_sim/.",
        Topic::Init => "wxgrades init [FILE]\n\nWrite a commented config file to start from (default wxgrades.toml). Never overwrites.",
        Topic::Check => "wxgrades check [--config FILE]\n\nValidate the config; with WeChat credentials, fetch an access_token to prove them, and say\nwhat each refusal means (IP whitelist, wrong secret or AppID, unverified account). Also checks\nthat public_url is https with no path, and warns when listen is loopback (a proxy in front)\nbut trust_proxy is off. Exit 0 only when all is well (warnings allowed).",
        Topic::Menu => "wxgrades menu show|push [--config FILE]\n\nshow: print the custom menu JSON built from [[menu]] in the config.\npush: publish it to WeChat (cgi-bin/menu/create) and report WeChat's answer.",
        Topic::Import => "wxgrades import roster FILE [--dry-run] [--map MAP] [--preset NAME]\nwxgrades import grades FILE [--dry-run] [--replace-term TERM] [--map MAP] [--preset NAME]\n                            [--publish-at \"YYYY-MM-DD HH:MM\"]\n\nThe admin page's import engine, for scripts. CSV (UTF-8 or GBK/GB18030, with or without BOM) or XLSX;\nheaders in English or Chinese. All or nothing: one bad row and nothing is written; every error is listed.\n--dry-run prints the plan and writes nothing. --replace-term first removes that term's rows the file does not list.\n--map \"学号=XH,学期=XNXQDM\" names the file's header for each of our columns (our names: 学号, 学期, 学年,\n课程代码, 课程名称, 学分, 成绩, 考试性质, 姓名, 课程性质, 开课学院, 教学班, 平时成绩, …; for rosters 证件号码 or\n验证码, 班级, 专业, 学院, 年级); an unknown name or a header not in the file is a usage error (exit 2).\n--preset NAME uses a mapping saved on the admin page; a file whose header row matches a saved preset\nuses it without being told. --publish-at holds the grades until that China-time minute (a release: see\n`wxgrades releases`; students see nothing of it before, the server publishes it then).",
        Topic::Admin => "wxgrades admin add NAME [--role admin|registrar|viewer] [--password-stdin]\nwxgrades admin passwd NAME [--password-stdin]\nwxgrades admin list\nwxgrades admin remove NAME\n\nManage the accounts of the admin pages (/admin). The password (at least 10 characters) is asked\nfor twice without echo, or read as one line from standard input with --password-stdin.\nA new password or a removal ends that admin's sessions. Needs the server stopped.\nRoles: admin (everything, accounts, backups; the default), registrar (imports, releases,\ncorrections, students, exports), viewer (dashboards, courses, students; read only, no\nexport of personal data). `admin list` shows each account's role; an admin changes roles\non /admin/accounts.",
        Topic::Export => "wxgrades export grades [--term TERM] [-o FILE]\n\nWrite every grade row (or one term's) as CSV in the import format: UTF-8 with BOM, so Excel\nopens it; cells that Excel would run as formulas get a leading '. To standard output without -o.\nWhile the server runs, use /admin/export.csv instead.",
        Topic::Backup => "wxgrades backup FILE\n\nWrite a consistent copy of the data file to FILE (replacing it). Needs the server stopped; while\nit runs, copy a snapshot from backup.dir or download one from /admin/backup.",
        Topic::Restore => "wxgrades restore [--check] FILE\n\nCheck that FILE is a good backup (a cleanly closed wxgrades data file, no newer schema, every\ntable readable) and put it in place of the data file, keeping the replaced file beside it as\n<data>.replaced-<time>. With --check, only check. Needs the server stopped.",
        Topic::VerifyFile => "wxgrades verify-file add FILE\n\nCopy a domain-check file downloaded from the 公众号 settings (e.g. MP_verify_abc123.txt) into\nverify_dir (config; default data/verify), where the server answers it at /<name>. The name must\nmatch ^[A-Za-z0-9_-]{1,64}\\.txt$; the file at most 4 KiB. An existing file of that name is replaced.",
        Topic::Presets => "wxgrades presets list\nwxgrades presets show NAME\nwxgrades presets remove NAME\n\nSaved column mappings for imports (see --map), made on the admin page's mapping form.\nremove is audited.",
        Topic::Releases => "wxgrades releases list\nwxgrades releases publish ID\nwxgrades releases withdraw ID\n\nGrade imports held for a later release (import grades --publish-at).\nlist: every release, its state (scheduled, published, withdrawn), publish time and counts.\npublish ID: publish a scheduled release now (its notices are sent by the server when it runs).\nwithdraw ID: drop a scheduled release; students never see it. Needs the server stopped.",
    }
}
