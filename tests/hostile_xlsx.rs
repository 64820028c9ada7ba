//! Hostile XLSX uploads (issue 11 item 3): a shared-strings count of 1e11 or 2^64−1, a cell at
//! XFD1048576, a reversed `<dimension ref>`, too many entries, an absurd ratio and zip bombs
//! (honest and lying about their size) are refused with a clear message (a large `<dimension
//! ref>` alone is harmless and reads) — through the reader and through the admin upload over HTTP —
//! while the process's peak memory stays bounded and a normal upload works afterwards.
//!
//! One test function: the peak-RSS measurement must not see other tests' allocations.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{Client, Resp, TestServer};
use wxgrades::service::admin::accounts;
use wxgrades::service::import::table::{read_table, TableReader, XlsxLimits};

const PW: &str = "correct horse battery";
const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n2024002,李四,654321\n";

// ---------------------------------------------------------------------------------------------
// A zip written by hand, so that sizes and ratios can lie.
// ---------------------------------------------------------------------------------------------

struct Entry {
    name: String,
    /// 0 = stored, 8 = deflated.
    method: u16,
    data: Vec<u8>,
    declared_size: u32,
    crc: u32,
}

fn stored(name: &str, body: &str) -> Entry {
    Entry {
        name: name.to_string(),
        method: 0,
        data: body.as_bytes().to_vec(),
        declared_size: body.len() as u32,
        crc: crc32(body.as_bytes()),
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&e.method.to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&e.crc.to_le_bytes());
            h.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            h.extend_from_slice(&e.declared_size.to_le_bytes());
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(e.name.as_bytes());
            h
        };
        out.extend_from_slice(&header(0x0403_4b50, false));
        out.extend_from_slice(&e.data);
        central.extend_from_slice(&header(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // disk numbers
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

const NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

/// The parts of a one-sheet workbook around `sheet` and `sst`.
fn workbook(sheet: Entry, sst: &str) -> Vec<u8> {
    zip(&[
        stored(
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#,
        ),
        stored(
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        stored(
            "xl/workbook.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="成绩" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        stored(
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#,
        ),
        stored("xl/sharedStrings.xml", sst),
        sheet,
    ])
}

fn sheet_xml(dimension: &str, rows: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>"#
    )
}

fn sst_xml(unique_count: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}" count="1" uniqueCount="{unique_count}"><si><t>学号</t></si></sst>"#
    )
}

fn inline(at: &str, text: &str) -> String {
    format!(r#"<c r="{at}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

/// A real, small grades workbook (what a normal upload looks like).
fn normal_xlsx() -> Vec<u8> {
    normal_xlsx_with_dimension("A1:G3")
}

fn normal_xlsx_with_dimension(dimension: &str) -> Vec<u8> {
    let head = [
        "学号",
        "姓名",
        "学期",
        "课程代码",
        "课程名称",
        "学分",
        "成绩",
    ];
    let rows = [
        [
            "2024001",
            "张三",
            "2025-2026-1",
            "MA1001",
            "高等数学",
            "4",
            "88",
        ],
        [
            "2024002",
            "李四",
            "2025-2026-1",
            "MA1001",
            "高等数学",
            "4",
            "72",
        ],
    ];
    let mut xml = String::new();
    for (r, cells) in std::iter::once(&head).chain(rows.iter()).enumerate() {
        xml.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, text) in cells.iter().enumerate() {
            let at = format!("{}{}", char::from(b'A' + c as u8), r + 1);
            xml.push_str(&inline(&at, text));
        }
        xml.push_str("</row>");
    }
    workbook(
        stored("xl/worksheets/sheet1.xml", &sheet_xml(dimension, &xml)),
        &sst_xml("1"),
    )
}

fn small_sheet() -> Entry {
    stored(
        "xl/worksheets/sheet1.xml",
        &sheet_xml(
            "A1",
            &format!(r#"<row r="1">{}</row>"#, inline("A1", "学号")),
        ),
    )
}

/// Raw deflate of `chunks` MiB of zeros: one self-contained 1 MiB chunk (about 1 KB) repeated,
/// then an empty final block. Built in milliseconds; inflates to `chunks` MiB.
fn deflated_zeros(chunks: usize) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut chunk = Vec::with_capacity(64 << 10);
    c.compress_vec(&zeros, &mut chunk, flate2::FlushCompress::Sync)
        .expect("deflate");
    assert_eq!(c.total_in(), 1 << 20, "the whole chunk went in");
    let mut out = Vec::with_capacity(chunk.len() * chunks + 2);
    for _ in 0..chunks {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&[0x03, 0x00]);
    out
}

fn bomb(chunks: usize, declared_size: u32) -> Vec<u8> {
    workbook(
        Entry {
            name: "xl/worksheets/sheet1.xml".to_string(),
            method: 8,
            data: deflated_zeros(chunks),
            declared_size,
            crc: 0,
        },
        &sst_xml("1"),
    )
}

/// The hostile files, each with words its error message must contain.
fn hostile_files() -> Vec<(&'static str, Vec<u8>, &'static [&'static str])> {
    let far_cell = format!(
        r#"<row r="1">{}</row><row r="1048576">{}</row>"#,
        inline("A1", "学号"),
        inline("XFD1048576", "x")
    );
    // 3,700 MiB of zeros in about 4 MB.
    let honest_bomb = bomb(3_700, 3_700 << 20);
    assert!(honest_bomb.len() < 4_500_000, "{}", honest_bomb.len());
    vec![
        (
            "uniqueCount=1e11",
            workbook(small_sheet(), &sst_xml("100000000000")),
            &["100000000000 个共享字符串", "超出上限"],
        ),
        (
            "uniqueCount=2^64-1",
            workbook(small_sheet(), &sst_xml("18446744073709551615")),
            &["18446744073709551615 个共享字符串", "超出上限"],
        ),
        (
            "a cell at XFD1048576",
            workbook(
                stored("xl/worksheets/sheet1.xml", &sheet_xml("A1", &far_cell)),
                &sst_xml("1"),
            ),
            &["A1 到 XFD1048576", "超出上限"],
        ),
        (
            "a reversed dimension",
            workbook(
                stored(
                    "xl/worksheets/sheet1.xml",
                    &sheet_xml(
                        "XFD1048576:A1",
                        &format!(r#"<row r="1">{}</row>"#, inline("A1", "学号")),
                    ),
                ),
                &sst_xml("1"),
            ),
            &["工作表范围", "超出Excel范围"],
        ),
        (
            "a cell beyond Excel's grid",
            workbook(
                stored(
                    "xl/worksheets/sheet1.xml",
                    &sheet_xml(
                        "A1",
                        &format!(
                            r#"<row r="1"><c r="{}1"><v>1</v></c></row>"#,
                            "Z".repeat(12)
                        ),
                    ),
                ),
                &sst_xml("1"),
            ),
            &["超出Excel范围", "单元格位置"],
        ),
        ("an honest zip bomb", honest_bomb, &["解压后", "超出上限"]),
        (
            "a 50 MB entry declared from 1 KB",
            bomb(1, 50 << 20),
            &["压缩比", "超出上限"],
        ),
        (
            "ten thousand and one entries",
            zip(&(0..10_001)
                .map(|i| stored(&format!("x{i}"), ""))
                .collect::<Vec<_>>()),
            &["10001 个压缩条目", "超出上限"],
        ),
        (
            "a zip bomb declaring 4 KB",
            bomb(3_700, 4096),
            &["无法读取XLSX文件"],
        ),
    ]
}

/// Peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Resets the peak (Linux ≥ 4.0); returns false where the kernel refuses.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn server() -> (TestServer, Client) {
    let s = TestServer::start("max_upload_mb = 5", "");
    accounts::add(&s.app.store, "alice", PW, s.app.clock.now()).expect("add alice");
    s.import("roster", ROSTER);
    let mut c = s.client();
    let r = c.get("/admin/login");
    let t = Client::hidden(&r.body, "csrf_token");
    let r = c.post_form(
        "/admin/login",
        &[("username", "alice"), ("password", PW), ("csrf_token", &t)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    (s, c)
}

fn upload(c: &mut Client, name: &str, bytes: &[u8]) -> Resp {
    let r = c.get("/admin/import");
    assert_eq!(r.status, 200, "{}", r.body);
    let token = Client::hidden(&r.body, "csrf_token");
    let b = "----wxgradesHostileBoundary";
    let mut body = Vec::new();
    for (k, v) in [
        ("csrf_token", token.as_str()),
        ("kind", "grades"),
        ("replace_term", ""),
    ] {
        write!(
            body,
            "--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        )
        .expect("write");
    }
    write!(body, "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").expect("write");
    body.extend_from_slice(bytes);
    write!(body, "\r\n--{b}--\r\n").expect("write");
    let r = c.post_raw(
        "/admin/import",
        &format!("multipart/form-data; boundary={b}"),
        body,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let job = r.location().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.get(&job);
        if !r.body.contains("http-equiv=\"refresh\"") {
            return r;
        }
        assert!(Instant::now() < deadline, "{job} still busy");
        std::thread::yield_now();
    }
}

#[test]
fn hostile_xlsx_files_are_refused_in_bounded_memory_and_normal_uploads_go_on() {
    let files = hostile_files();
    let normal = normal_xlsx();
    let table = read_table("成绩.xlsx", &normal).expect("a normal workbook reads");
    assert_eq!(table.rows.len(), 2);
    let (s, mut c) = server();

    let resettable = reset_peak_rss();
    let before = peak_rss_kib();
    for (what, bytes, words) in &files {
        // Through the reader, with the limits of this server's upload cap...
        let limits = XlsxLimits::for_upload(s.app.config.max_upload_bytes);
        let err = match TableReader::open_limited("成绩.xlsx", bytes, &limits) {
            Ok(_) => panic!("{what}: read"),
            Err(e) => e.message,
        };
        for w in *words {
            assert!(err.contains(w), "{what}: {err}");
        }
        // ...and through the admin upload over HTTP.
        let r = upload(&mut c, "成绩.xlsx", bytes);
        assert_eq!(r.status, 422, "{what}: {}", r.body);
        for w in *words {
            assert!(r.body.contains(w), "{what}: {}", r.body);
        }
        assert!(!r.body.contains("/commit\""), "{what}: no commit form");
    }
    // The `<dimension ref>` lie alone is harmless (calamine reserves from it only when small):
    // the sheet reads as what its cells say.
    let lie = normal_xlsx_with_dimension("A1:XFD1048576");
    let t = read_table("成绩.xlsx", &lie).expect("a dimension lie alone reads");
    assert_eq!(t.rows.len(), 2);
    let r = upload(&mut c, "成绩.xlsx", &lie);
    assert!(r.body.contains("新增"), "{}", r.body);

    let peak = peak_rss_kib();
    // Without a reset the peak includes start-up; either way a bomb that got through would be
    // gigabytes.
    let grown = if resettable {
        peak.saturating_sub(before)
    } else {
        peak
    };
    assert!(
        grown < 200 * 1024,
        "peak RSS grew by {grown} KiB (reset: {resettable})"
    );

    // Nothing stored changed, and the server goes on: a normal XLSX and CSV preview clean.
    assert!(s.app.store.grades_of("2024001").expect("grades").is_empty());
    assert_eq!(c.get("/healthz").status, 200);
    let r = upload(&mut c, "成绩.xlsx", &normal);
    assert!(
        r.body.contains("新增") && r.body.contains("/commit"),
        "{}",
        r.body
    );
    let csv = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n2024001,张三,2025-2026-1,MA1001,高等数学,4,88\n";
    let r = upload(&mut c, "成绩.csv", csv.as_bytes());
    assert!(
        r.body.contains("新增") && r.body.contains("/commit"),
        "{}",
        r.body
    );
}
