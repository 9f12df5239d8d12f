//! The notification settings (src/push/): where the webhook goes and in which format, who the
//! push services may contact about this server, and the test-only loopback exception.

use super::ConfigError;

/// What the webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// A JSON POST of the notification (`kind`, `title`, `body`, `url`, …).
    #[default]
    Json,
    /// ntfy's publish format: the body as plain text, `Title`, `Click`, `Tags`, `Priority` headers.
    Ntfy,
}

#[derive(Debug, Clone, Default)]
pub struct NotificationSettings {
    /// `notify_webhook_url`: POST every notification there too.
    pub webhook_url: Option<String>,
    pub webhook_format: WebhookFormat,
    /// `push_contact`: the VAPID `sub` claim (mailto: or https:); push services write there
    /// about problems with this server's pushes.
    pub push_contact: Option<String>,
    /// `push_allow_loopback`: also accept `http://` push endpoints on loopback addresses (tests).
    pub push_allow_loopback: bool,
}

/// Checks the raw values (flag/env/file, already picked by precedence).
pub(super) fn resolve(
    webhook_url: Option<String>,
    webhook_format: Option<String>,
    push_contact: Option<String>,
    push_allow_loopback: Option<String>,
) -> Result<NotificationSettings, ConfigError> {
    let webhook_url = match webhook_url.map(|v| v.trim().to_string()) {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => {
            if super::origin_of(&v).is_none() || v.parse::<http::Uri>().is_err() {
                return Err(ConfigError::new(
                    "notify_webhook_url (CM_NOTIFY_WEBHOOK_URL)",
                    v,
                    "expected an http:// or https:// URL, e.g. https://ntfy.sh/my-secret-topic",
                ));
            }
            Some(v)
        }
    };
    let webhook_format = match webhook_format.as_deref().map(str::trim) {
        None | Some("json") => WebhookFormat::Json,
        Some("ntfy") => WebhookFormat::Ntfy,
        Some(other) => {
            return Err(ConfigError::new(
                "notify_webhook_format (CM_NOTIFY_WEBHOOK_FORMAT)",
                other,
                "one of json, ntfy",
            ))
        }
    };
    let push_contact = match push_contact.map(|v| v.trim().to_string()) {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) if v.starts_with("mailto:") || v.starts_with("https://") => Some(v),
        Some(v) => {
            return Err(ConfigError::new(
                "push_contact (CM_PUSH_CONTACT)",
                v,
                "expected a mailto: or https: address, e.g. mailto:you@example.com",
            ))
        }
    };
    let push_allow_loopback = match push_allow_loopback.as_deref().map(str::trim) {
        None | Some("0" | "false" | "no" | "off" | "") => false,
        Some("1" | "true" | "yes" | "on") => true,
        Some(other) => {
            return Err(ConfigError::new(
                "push_allow_loopback (CM_PUSH_ALLOW_LOOPBACK)",
                other,
                "expected 1 or 0 (true or false)",
            ))
        }
    };
    Ok(NotificationSettings {
        webhook_url,
        webhook_format,
        push_contact,
        push_allow_loopback,
    })
}
