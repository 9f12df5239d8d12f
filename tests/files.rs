//! `GET /api/files`: lists and reads inside the allowed roots only; symlinks that lead out and
//! `..` never escape; binary files are named and downloadable, not dumped into JSON.

mod common;
use std::path::PathBuf;

use common::TestServer;

struct Env {
    s: TestServer,
    root: PathBuf,
    outside: PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn start() -> Env {
    let (inside, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root = std::fs::canonicalize(inside.path()).unwrap();
    let out = std::fs::canonicalize(outside.path()).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(root.join("logo.bin"), [0u8, 1, 2, 255, 0]).unwrap();
    std::fs::write(out.join("secret.txt"), "not yours\n").unwrap();
    std::os::unix::fs::symlink(out.join("secret.txt"), root.join("leak")).unwrap();
    std::os::unix::fs::symlink(&out, root.join("leakdir")).unwrap();
    std::os::unix::fs::symlink(root.join("src"), root.join("alias")).unwrap();
    let r = root.clone();
    let s = TestServer::start_with(move |c| c.allowed_roots = vec![r]).await;
    Env {
        s,
        root,
        outside: out,
        _dirs: (inside, outside),
    }
}

fn q(path: &std::path::Path) -> String {
    let enc: String = form_urlencoded::byte_serialize(path.to_str().unwrap().as_bytes()).collect();
    format!("/api/files?path={enc}")
}

#[tokio::test]
async fn a_directory_is_listed_with_kinds_and_where_symlinks_lead() {
    let e = start().await;
    let r = e.s.get(&q(&e.root)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["type"], "dir");
    let entries = r.body["entries"].as_array().unwrap();
    let kind = |name: &str| {
        let x = entries.iter().find(|x| x["name"] == name).unwrap();
        (
            x["type"].as_str().unwrap().to_string(),
            x["inside"].as_bool(),
        )
    };
    assert_eq!(kind("src"), ("dir".into(), None));
    assert_eq!(kind("logo.bin"), ("file".into(), None));
    assert_eq!(kind("leak"), ("symlink".into(), Some(false)));
    assert_eq!(kind("alias"), ("symlink".into(), Some(true)));
    // Directories first.
    assert_eq!(entries[0]["type"], "dir");
}

#[tokio::test]
async fn text_comes_back_as_json_and_binary_is_named_then_downloaded() {
    let e = start().await;
    let r = e.s.get(&q(&e.root.join("src/main.rs"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["type"].as_str(), r.body["content"].as_str()),
        (Some("file"), Some("fn main() {}\n"))
    );
    let r = e.s.get(&q(&e.root.join("logo.bin"))).await;
    assert_eq!(
        (r.body["binary"].as_bool(), r.body["content"].is_null()),
        (Some(true), true)
    );
    let r =
        e.s.send(e.s.req(
            reqwest::Method::GET,
            &format!("{}&download=1", q(&e.root.join("logo.bin"))),
        ))
        .await;
    assert_eq!(r.status, 200);
    let cd = r.headers["content-disposition"].to_str().unwrap();
    assert!(cd.contains("attachment") && cd.contains("logo.bin"), "{cd}");
    // A symlink inside the roots is followed.
    let r = e.s.get(&q(&e.root.join("alias/main.rs"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn symlinks_out_and_dot_dot_never_escape_the_roots() {
    let e = start().await;
    let secret = e.outside.join("secret.txt");
    let dotdot = e
        .root
        .join("src/../..")
        .join(e.outside.file_name().unwrap())
        .join("secret.txt");
    for path in [
        e.root.join("leak"),
        e.root.join("leakdir/secret.txt"),
        e.root.join("leakdir"),
        secret.clone(),
        dotdot,
        PathBuf::from("/etc/passwd"),
        PathBuf::from("/"),
    ] {
        let r = e.s.get(&q(&path)).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "outside_roots"),
            "{path:?}: {}",
            r.text
        );
        assert!(!r.text.contains("not yours"));
    }
    let r = e.s.get(&q(&e.root.join("nope.txt"))).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = e.s.get("/api/files?path=relative/x").await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("path"))
    );
    let r = e.s.get("/api/files").await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("path"))
    );
}
