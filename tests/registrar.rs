//! Registrar exports imported unedited through the command line (`wxgrades import`), one
//! fixture per layout in `tests/fixtures/registrar/` (written by its `make_fixtures.py`), each
//! in the container and encoding that system produces; the stored rows are checked exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use wxgrades::service::verify::VerifyKey;
use wxgrades::store::Store;

struct Cli {
    config: PathBuf,
    data: PathBuf,
}

impl Cli {
    fn new(name: &str) -> Cli {
        let dir =
            std::env::temp_dir().join(format!("wxgrades-registrar-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let data = dir.join("data.redb");
        let config = dir.join("wxgrades.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:9\"\npublic_url = \"https://jw.example.edu.cn\"\ndata = \"{}\"\n[wechat]\napp_id = \"wx0123456789abcdef\"\napp_secret = \"0123456789abcdef0123456789abcdef\"\ntoken = \"testtoken\"\n[backup]\ndir = \"{}\"\n",
                data.display(),
                dir.join("backups").display()
            ),
        )
        .expect("config");
        Cli { config, data }
    }

    /// Runs `wxgrades import KIND FILE`; exit code and stdout+stderr.
    fn import(&self, kind: &str, file: &str) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_wxgrades"))
            .args(["import", kind])
            .arg(fixture(file))
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run wxgrades");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Every stored grade row of these students, as "id term code name credit score kind".
    fn rows(&self, students: &[&str]) -> Vec<String> {
        let store = Store::open(&self.data).expect("open store");
        let mut out = Vec::new();
        for sid in students {
            for r in store.grades_of(sid).expect("grades") {
                out.push(format!(
                    "{} {} {} {} {} {} {}",
                    r.student_id, r.term, r.course_code, r.course_name, r.credit, r.score, r.kind
                ));
            }
        }
        out.sort();
        out
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/registrar")
        .join(name)
}

fn sorted(rows: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn import_ok(cli: &Cli, kind: &str, file: &str, layout: &str) -> String {
    let (code, out) = cli.import(kind, file);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("识别为：{layout}")), "{out}");
    out
}

#[test]
fn new_zhengfang_xlsx_void_rows_skipped_and_counted() {
    let cli = Cli::new("xzf");
    let out = import_ok(&cli, "grades", "xinzhengfang.xlsx", "新正方 成绩导出");
    assert!(out.contains("XLSX"), "{out}");
    assert!(out.contains("skipped 1 rows marked void"), "{out}");
    assert!(
        out.contains("read 考试性质「补考一」as「补考」: 1 rows"),
        "{out}"
    );
    assert!(out.contains("add 5,"), "{out}");
    assert_eq!(
        cli.rows(&["2025010101", "2025010102"]),
        sorted(&[
            "2025010101 2025-2026-1 B1100011 高等数学A(一) 5 87 正常考试",
            "2025010101 2025-2026-1 B1100013 体育(一) 1 良好 正常考试",
            "2025010102 2025-2026-1 B1100012 大学英语(一) 3 52 正常考试",
            "2025010102 2025-2026-1 B1100012 大学英语(一) 3 61 补考",
            "2025010102 2025-2026-2 B1100021 程序设计基础 3.5 缓考 正常考试",
        ])
    );
}

#[test]
fn old_zhengfang_html_xls_in_gbk_makeup_and_retake_columns() {
    let cli = Cli::new("jzf");
    let out = import_ok(&cli, "grades", "jiuzhengfang.xls", "旧正方 成绩导出");
    assert!(out.contains("网页表格（HTML，GBK/GB18030）"), "{out}");
    assert_eq!(
        cli.rows(&["2024020201", "2024020202"]),
        sorted(&[
            "2024020201 2024-2025-2 0210032 线性代数 3 48 正常考试",
            "2024020201 2024-2025-2 0210032 线性代数 3 55 补考",
            "2024020201 2024-2025-2 0210032 线性代数 3 76 重修",
            "2024020201 2024-2025-2 0210041 大学物理 4 中等 正常考试",
            "2024020202 2024-2025-1 0210032 线性代数 3 缺考 正常考试",
            "2024020202 2024-2025-1 0210032 线性代数 3 62 补考",
        ])
    );
}

#[test]
fn qiangzhi_binary_xls_title_row_and_score_flag() {
    let cli = Cli::new("qz");
    let out = import_ok(&cli, "grades", "qiangzhi.xls", "强智 成绩导出");
    assert!(out.contains("旧版Excel .xls（工作表“学生成绩”）"), "{out}");
    assert!(
        out.contains("columns: 学号=学号, 学期=开课学期, 课程代码=课程编号, 课程名称=课程名称, 学分=学分, 成绩=成绩, 考试性质=考试性质, 姓名=姓名, 成绩标识=成绩标识"),
        "{out}"
    );
    assert_eq!(
        cli.rows(&["2023030301", "2023030302"]),
        sorted(&[
            "2023030301 2025-2026-1 08010023 数据结构 3.5 缺考 正常考试",
            "2023030301 2025-2026-1 08010024 离散数学 3 91 正常考试",
            "2023030301 2025-2026-2 08010023 数据结构 3.5 66 补考",
            "2023030302 2025-2026-1 08010025 创新创业基础 2 免修 正常考试",
        ])
    );
}

#[test]
fn urp_gbk_csv_autumn_and_spring() {
    let cli = Cli::new("urp");
    let out = import_ok(&cli, "grades", "urp.csv", "URP 综合教务 成绩导出");
    assert!(out.contains("GBK"), "{out}");
    assert_eq!(
        cli.rows(&["2022040401", "2022040402"]),
        sorted(&[
            "2022040401 2025-2026-1 100101 概率论与数理统计 3 83.5 正常考试",
            "2022040401 2025-2026-2 100102 数值分析 2.5 优秀 正常考试",
            "2022040402 2025-2026-2 100102 数值分析 2.5 合格 正常考试",
        ])
    );
}

/// Course facts (课程性质, 开课学院, 教学班) are stored from every layout that has them: 强智's
/// 课程属性 is the 必修/选修 one, URP's 课序号 is the teaching class, 旧正方's 学院名称 is the
/// teaching school; our own layout has none.
#[test]
fn course_facts_kept_from_every_layout() {
    for (file, sid, code, want) in [
        (
            "xinzhengfang.xlsx",
            "2025010101",
            "B1100011",
            "必修课|数学与统计学院|(2025-2026-1)-B1100011-01",
        ),
        (
            "jiuzhengfang.xls",
            "2024020201",
            "0210032",
            "必修课|数学学院|-",
        ),
        ("qiangzhi.xls", "2023030302", "08010025", "选修|-|-"),
        ("urp.csv", "2022040401", "100102", "任选|-|02"),
        ("own.csv", "2025010101", "GE102", "-|-|-"),
    ] {
        let cli = Cli::new(&format!("facts-{code}"));
        let (code_run, out) = cli.import("grades", file);
        assert_eq!(code_run, 0, "{file}: {out}");
        let store = Store::open(&cli.data).expect("open store");
        let rows = store.grades_of(sid).expect("grades");
        let facts: Vec<String> = rows
            .iter()
            .filter(|r| r.course_code == code)
            .map(|r| {
                let c = &r.course;
                format!(
                    "{}|{}|{}",
                    c.nature.as_deref().unwrap_or("-"),
                    c.college.as_deref().unwrap_or("-"),
                    c.class_group.as_deref().unwrap_or("-")
                )
            })
            .collect();
        assert!(!facts.is_empty(), "{file}: no rows for {code}");
        assert!(facts.iter().all(|f| f == want), "{file}: {facts:?}");
        if file == "xinzhengfang.xlsx" {
            assert!(out.contains("课程性质=课程性质"), "{out}");
            assert!(out.contains("教学班=教学班"), "{out}");
        }
    }
}

#[test]
fn own_layout_utf8_bom_csv() {
    let cli = Cli::new("own");
    import_ok(&cli, "grades", "own.csv", "本系统格式");
    assert_eq!(
        cli.rows(&["2025010101"]),
        sorted(&[
            "2025010101 2025-2026-1 GE101 军事理论 2 合格 正常考试",
            "2025010101 2025-2026-1 GE102 思想道德与法治 3 88 正常考试",
        ])
    );
}

#[test]
fn roster_with_id_numbers_stores_only_a_hash_of_the_last_six() {
    let cli = Cli::new("roster");
    let out = import_ok(&cli, "roster", "roster.csv", "教务系统学籍导出（证件号码）");
    assert!(out.contains("add 2,"), "{out}");
    for secret in [
        "11010520070312002x",
        "320102200611230415",
        "12002X",
        "230415",
    ] {
        assert!(!out.contains(secret), "{out}");
    }
    let key = VerifyKey::load_or_create(&cli.data).expect("key");
    let store = Store::open(&cli.data).expect("open store");
    let s = store.student("2025010101").expect("read").expect("student");
    assert_eq!(
        (s.name.as_str(), s.class.as_deref(), s.major.as_deref()),
        ("林晓", Some("软件2501"), Some("软件工程"))
    );
    assert_eq!(
        (s.college.as_deref(), s.cohort.as_deref()),
        (Some("计算机学院"), Some("2025"))
    );
    assert!(key.matches("2025010101", "12002X", &s.verify));
    assert!(!key.matches("2025010101", "002X", &s.verify));
    assert!(!key.matches("2025010101", "070312", &s.verify));
    let s = store.student("2025010102").expect("read").expect("student");
    assert!(key.matches("2025010102", "230415", &s.verify));
    drop(store);
    // The data file holds no full ID number.
    let bytes = std::fs::read(&cli.data).expect("data file");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("11010520070312002") && !text.contains("3201022006112304"));
}

/// Import speed of the 新正方 layout against our own: the same 1.2 M grade rows as CSV, and the
/// 新正方 layout as XLSX (1,000,000 rows: one Excel sheet holds at most 1,048,575 below its
/// header). Each import runs into an empty data file, in release:
/// `cargo test --release --test registrar -- --ignored --nocapture` (`BENCH_ROWS` for fewer rows).
#[test]
#[ignore]
fn bench_new_zhengfang_csv_against_own_layout() {
    use std::fmt::Write as _;
    // BENCH_ROWS for a smaller run; the XLSX is capped below Excel's sheet limit.
    let rows_env = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    let rows_of = |default: u32| rows_env.map_or(default, |r| r.min(default));
    let (rows_csv, rows_xlsx) = (rows_of(1_200_000), rows_of(1_000_000));
    let cli = Cli::new("bench");
    let dir = cli.data.parent().expect("dir").to_path_buf();
    let xzf_header = "学年,学期,课程代码,课程名称,课程性质,学分,成绩备注,绩点,成绩性质,是否学位课程,开课学院,课程标记,课程类别,课程归属,教学班,任课教师,考核方式,学号,姓名,学生标记,成绩,是否成绩作废,学分绩点";
    let xzf_row = |i: u32| -> Vec<String> {
        let (sid, course, term) = (2_021_000_000 + i / 60, i % 60, 1 + i % 2);
        let (credit, score) = (1 + i % 4, 50 + i % 50);
        let kind = if i.is_multiple_of(7) {
            "补考一"
        } else {
            "正常考试"
        };
        format!("2024-2025,{term},C{course:04},课程{course},必修课,{credit}.5,,,{kind},否,某学院,,,,,,考试,{sid},学生,,{score}.5,否,")
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let mut own = String::from("学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质\n");
    let mut xzf = format!("{xzf_header}\n");
    for i in 0..rows_csv {
        let (sid, course, term) = (2_021_000_000 + i / 60, i % 60, 1 + i % 2);
        let (credit, score) = (1 + i % 4, 50 + i % 50);
        let kind = if i.is_multiple_of(7) { "补考" } else { "" };
        let _ = writeln!(
            own,
            "{sid},学生,2024-2025-{term},C{course:04},课程{course},{credit}.5,{score}.5,{kind}"
        );
        let _ = writeln!(xzf, "{}", xzf_row(i).join(","));
    }
    let xlsx = dir.join("xinzhengfang.xlsx");
    write_xlsx(
        &xlsx,
        &xzf_header.split(',').collect::<Vec<_>>(),
        (0..rows_xlsx).map(xzf_row),
    );
    std::fs::write(dir.join("own.csv"), own).expect("write");
    std::fs::write(dir.join("xinzhengfang.csv"), xzf).expect("write");
    let mut figures = Vec::new();
    for (name, rows) in [
        ("own.csv", rows_csv),
        ("xinzhengfang.csv", rows_csv),
        ("xinzhengfang.xlsx", rows_xlsx),
    ] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&cli.data);
        let mb = std::fs::metadata(&path).expect("size").len() as f64 / 1e6;
        let (secs, peak, anon) = timed_import(&cli, &path);
        println!(
            "BENCH import {name} ({mb:.0} MB) {rows} rows: {secs:.2} s, {:.0} rows/s, peak RSS {peak:.0} MB ({anon:.0} MB anonymous)",
            f64::from(rows) / secs
        );
        figures.push(secs);
    }
    assert_eq!(figures.len(), 3);
}

/// Run `wxgrades import grades PATH`, sampling its peak RSS (VmHWM) and peak anonymous RSS
/// (RssAnon, every 5 ms); (seconds, MB, MB).
fn timed_import(cli: &Cli, path: &Path) -> (f64, f64, f64) {
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxgrades"))
        .args(["import", "grades"])
        .arg(path)
        .arg("--config")
        .arg(&cli.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let (mut peak, mut peak_anon) = (0.0f64, 0.0f64);
    loop {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let mb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
        };
        if let Some(m) = mb("VmHWM:") {
            peak = peak.max(m);
        }
        // Anonymous memory alone: the file's mapped pages count in RSS but are the file.
        if let Some(m) = mb("RssAnon:") {
            peak_anon = peak_anon.max(m);
        }
        if let Some(st) = child.try_wait().expect("wait") {
            assert!(st.success(), "import of {} failed", path.display());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    (started.elapsed().as_secs_f64(), peak, peak_anon)
}

/// A one-sheet XLSX of `header` and `rows`, cells as inline strings, stored without
/// compression (a million repetitive rows deflate past the importer's zip-bomb ratio).
fn write_xlsx(path: &Path, header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    use std::io::Write as _;
    use zip::write::SimpleFileOptions;
    let file = std::fs::File::create(path).expect("xlsx");
    let mut z = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="成绩" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
    ];
    for (name, text) in parts {
        z.start_file(name, opts).expect("part");
        z.write_all(text.as_bytes()).expect("part");
    }
    z.start_file("xl/worksheets/sheet1.xml", opts)
        .expect("sheet");
    let put = |z: &mut zip::ZipWriter<_>, row: usize, cells: &[&str]| {
        let mut line = format!("<row r=\"{row}\">");
        for (col, c) in cells.iter().enumerate() {
            if c.is_empty() {
                continue;
            }
            // Columns A to Z are enough for every layout here.
            let letter = char::from(b'A' + u8::try_from(col).expect("at most 26 columns"));
            line.push_str(&format!(
                "<c r=\"{letter}{row}\" t=\"inlineStr\"><is><t>{c}</t></is></c>"
            ));
        }
        line.push_str("</row>");
        z.write_all(line.as_bytes()).expect("row");
    };
    z.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#).expect("sheet");
    put(&mut z, 1, header);
    for (i, r) in rows.enumerate() {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        put(&mut z, i + 2, &cells);
    }
    z.write_all(b"</sheetData></worksheet>").expect("sheet");
    z.finish().expect("zip");
}
