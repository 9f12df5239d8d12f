//! The webhook (`notify_webhook_url`): the same notifications as Web Push, for people who live in
//! other tools. `json`: a POST of the notification as a JSON object. `ntfy`: ntfy's publish
//! format (docs.ntfy.sh/publish) — the message as the plain-text body, and `Title`, `Priority`,
//! `Tags` and `Click` headers — so a phone with the ntfy app gets a native notification.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde::Serialize;

use super::notification::{Notification, NotificationKind};
use crate::config::WebhookFormat;

/// Where links point: `public_url` makes the notification's page path an absolute URL.
pub(super) trait Links {
    fn public_url(&self) -> Option<&str>;
}

/// One built webhook request, sent (and resent on retry) as is.
pub(super) struct Webhook {
    url: String,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
}

/// The JSON body: the notification, its link absolute when the server knows its public URL.
#[derive(Serialize)]
struct JsonBody<'a> {
    #[serde(flatten)]
    notification: &'a Notification,
    /// The page's absolute URL; `None` without `public_url`.
    link: Option<String>,
}

impl Webhook {
    pub fn new(
        url: &str,
        format: WebhookFormat,
        n: &Notification,
        links: &impl Links,
    ) -> Result<Webhook, serde_json::Error> {
        let link = links
            .public_url()
            .map(|base| format!("{}{}", base.trim_end_matches('/'), n.url));
        let (body, headers) = match format {
            WebhookFormat::Json => {
                let body = serde_json::to_vec(&JsonBody {
                    notification: n,
                    link,
                })?;
                (body, vec![("content-type", "application/json".to_string())])
            }
            WebhookFormat::Ntfy => {
                let mut headers = vec![
                    ("content-type", "text/plain; charset=utf-8".to_string()),
                    ("title", header_text(&n.title)),
                    (
                        "priority",
                        if n.urgent() { "high" } else { "default" }.into(),
                    ),
                    ("tags", ntfy_tag(n.kind).into()),
                ];
                if let Some(link) = link {
                    headers.push(("click", link));
                }
                (n.body.clone().into_bytes(), headers)
            }
        };
        Ok(Webhook {
            url: url.to_string(),
            body: Bytes::from(body),
            headers,
        })
    }

    pub fn request(&self) -> Result<Request<Full<Bytes>>, http::Error> {
        let mut req = Request::post(self.url.as_str());
        for (name, value) in &self.headers {
            req = req.header(*name, value.as_str());
        }
        req.body(Full::new(self.body.clone()))
    }
}

/// An emoji short code ntfy shows before the title.
fn ntfy_tag(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Input => "bell",
        NotificationKind::Approval => "lock",
        NotificationKind::RunFinished => "white_check_mark",
        NotificationKind::RunFailed => "x",
        NotificationKind::Test => "wave",
    }
}

/// HTTP header values are ASCII: other text goes as an RFC 2047 encoded word, which ntfy decodes.
fn header_text(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        s.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At(Option<&'static str>);
    impl Links for At {
        fn public_url(&self) -> Option<&str> {
            self.0
        }
    }

    #[test]
    fn ntfy_gets_text_and_headers_with_an_absolute_click_link() {
        let n = Notification::test();
        let w = Webhook::new(
            "https://ntfy.sh/t",
            WebhookFormat::Ntfy,
            &n,
            &At(Some("https://cm.example.com/")),
        )
        .unwrap();
        assert_eq!(w.body, n.body.as_bytes());
        assert!(w
            .headers
            .contains(&("click", "https://cm.example.com/".to_string())));
        assert!(w.headers.contains(&("tags", "wave".to_string())));
        let plain = Webhook::new("https://x/", WebhookFormat::Ntfy, &n, &At(None)).unwrap();
        assert!(!plain.headers.iter().any(|(h, _)| *h == "click"));
    }

    #[test]
    fn non_ascii_titles_are_encoded_words() {
        assert_eq!(header_text("Run finished"), "Run finished");
        assert_eq!(header_text("Run: “x”"), "=?UTF-8?B?UnVuOiDigJx44oCd?=");
    }
}
