//! The web UI in real Chromium: each `web/tests/<name>.test.mjs` runs (playwright-core driving
//! Debian's `/usr/bin/chromium`) against a real server started here on 127.0.0.1:0 with a temp
//! data dir and the fake agent. A test fails on any console error in the page. Screenshots land
//! in `target/web-screenshots/`.
//!
//! Needs Node (the UI is built by build.rs anyway) and Chromium (`apt-get install chromium`;
//! `scripts/test` installs it). Without Chromium these tests fail and say so; set
//! `CM_SKIP_BROWSER_TESTS=1` to skip them knowingly.

mod common;

use std::path::Path;

use claude_manager::config::Config;
use common::TestServer;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// One Chromium at a time: two cores, and each test's timing stays its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn browser_test(name: &str) {
    browser_test_with(name, |_| {}).await;
}

/// [`browser_test`] against a server whose config `tweak` changes.
async fn browser_test_with(name: &str, tweak: impl FnOnce(&mut Config)) {
    let _one_at_a_time = SERIAL.lock().await;
    if common::browser::skipped(name) {
        return;
    }
    let work = tempfile::tempdir().expect("work dir");
    let work_path = work.path().canonicalize().expect("canonical work dir");
    let roots = work_path.clone();
    let s = TestServer::start_with(move |c| {
        c.allowed_roots = vec![roots];
        tweak(c);
    })
    .await;
    let monitor = s.create_token("monitor").await;
    let fake = Path::new(MANIFEST).join("tests/fixtures/fake-claude");
    common::browser::run(
        name,
        &[
            ("CM_URL", s.base.clone().into()),
            ("CM_TOKEN", s.token.clone().unwrap_or_default().into()),
            ("CM_MONITOR_TOKEN", monitor.into()),
            ("CM_FAKE_CLAUDE", fake.into()),
            ("CM_WORK_DIR", work_path.into()),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_login_navigation_logout() {
    browser_test("smoke").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_form_task_run_shows_result_cost_and_deep_links() {
    browser_test("tasks").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_live_updates_api_errors_url_filters_and_phone_layout() {
    browser_test("pages").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_form_reload_readonly_reconnect() {
    browser_test("terminal").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn phone_terminal_key_bar_and_layout() {
    browser_test("phone").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_cards_allow_and_deny_with_attention_badge_and_tab_title() {
    browser_test("approvals").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_session_in_the_terminal_view() {
    browser_test("agent_terminal").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_page_filters_live_words_continue_and_every_page_screenshot() {
    browser_test("executions").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_no_auth_opens_without_login() {
    browser_test_with("noauth", |c| c.insecure_no_auth = true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_tab_diff_side_by_side_and_unified_file_browser_and_merge() {
    browser_test("changes").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn installable_manifest_icons_service_worker_and_notification_button() {
    browser_test("install").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn caps_in_the_terminal_and_agent_forms_and_the_refusal_under_the_field() {
    // Without session cgroups, so that every machine sees the 422 the form must show.
    browser_test_with("caps", |c| {
        c.session_cgroups = claude_manager::config::CgroupSetting::Off;
    })
    .await;
}

/// A 16 KiB ring, so the full-screen program's output leaves it and only a snapshot can show it.
#[tokio::test(flavor = "multi_thread")]
async fn one_size_for_a_desktop_and_a_phone_and_a_full_screen_program_across_reloads() {
    browser_test_with("size", |c| c.scrollback_bytes = 16 * 1024).await;
}

/// A full-screen program started at another size than the browser's, with a scroll region set:
/// drawn from the snapshot, then redrawn at the view's size, on open and after a reload.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_screen_program_of_another_size_is_drawn_from_its_top_row() {
    browser_test("snapshot_size").await;
}
