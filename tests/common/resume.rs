//! Sessions that outlive a server image (reload, crash): attach, is a child alive, and the check
//! that a `since` resume is byte-exact.

use serde_json::Value;

use super::term::{next, read_until, Seen};
use super::{ServerProcess, Ws};

/// A viewer of session `id` (`prefix` is its collection) and its `attached` message.
pub async fn attach(p: &ServerProcess, prefix: &str, id: &str, query: &str) -> (Ws, Value) {
    let mut ws = p.ws(&format!("{prefix}/{id}/ws{query}")).await;
    let msg = next(&mut ws).await;
    let v: Value = serde_json::from_str(msg.to_text().expect("text")).expect("json");
    assert_eq!(v["type"], "attached", "{v}");
    (ws, v)
}

/// Alive and not a zombie.
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(") ").next().and_then(|r| r.chars().next()) != Some('Z'))
        .unwrap_or(false)
}

/// Terminal `id` prints `tick 1`, `tick 2`, …: a viewer attaching with `since=resume_at` starts
/// exactly there, what it reads equals a `since=0` replay of the same range, and no tick is
/// lost or repeated from offset 0 on. Returns the ticks seen.
pub async fn assert_resume_is_exact(p: &ServerProcess, id: &str, resume_at: u64) -> Vec<u64> {
    let (mut ws, resumed_attached) =
        attach(p, "/api/terminals", id, &format!("?since={resume_at}")).await;
    assert_eq!(
        resumed_attached["offset"].as_u64(),
        Some(resume_at),
        "{resumed_attached}"
    );
    assert_eq!(resumed_attached["truncated"], false);
    let mut resumed = Seen::default();
    read_until(&mut ws, &mut resumed, |s| s.bytes.len() >= 2000).await;
    let (mut ws0, from_zero_attached) = attach(p, "/api/terminals", id, "?since=0").await;
    assert_eq!(from_zero_attached["offset"], 0, "{from_zero_attached}");
    let mut from_zero = Seen::default();
    let want = resume_at as usize + resumed.bytes.len();
    read_until(&mut ws0, &mut from_zero, |s| s.bytes.len() >= want).await;
    assert_eq!(
        &from_zero.bytes[resume_at as usize..want],
        &resumed.bytes[..],
        "since resume differs from the since=0 replay"
    );
    assert!(
        from_zero.bytes.starts_with(b"tick 1\r\n"),
        "offsets went on from 0"
    );
    let text = String::from_utf8_lossy(&from_zero.bytes[..want]).to_string();
    let ticks: Vec<u64> = text
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "a tick was lost or repeated: {pair:?}"
        );
    }
    ticks
}
