//! A short, human name for a viewer's device, from its `User-Agent`: what the terminal shows
//! as "set by Chrome on Android" when another viewer holds the session's size. Only the
//! browser and platform are kept (never the whole header), and what is not a known browser is
//! named by its product token, cut and cleaned, or "another client".

/// The longest product token kept for a client that is not a known browser.
const PRODUCT_MAX_CHARS: usize = 24;

/// "Browser on Platform", "Browser", the client's product token, or "another client".
pub fn label(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return "another client".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    let platform = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    match (browser, platform) {
        (Some(b), Some(p)) => format!("{b} on {p}"),
        (Some(b), None) => b.into(),
        (None, _) => {
            let product: String = ua
                .split(['/', ' '])
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .take(PRODUCT_MAX_CHARS)
                .collect();
            if product.is_empty() {
                "another client".into()
            } else {
                product
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn browsers_and_platforms_are_named() {
        let cases = [
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iPhone"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Chrome on Linux"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:132.0) Gecko/20100101 Firefox/132.0", "Firefox on macOS"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
        ];
        for (ua, want) in cases {
            assert_eq!(label(Some(ua)), want, "{ua}");
        }
    }

    #[test]
    fn other_clients_get_their_cleaned_product_or_a_plain_name() {
        assert_eq!(label(Some("Python/3.11 websockets/14.1")), "Python");
        assert_eq!(label(Some("curl/8.5.0")), "curl");
        assert_eq!(label(Some("<script>alert(1)</script>")), "scriptalert1");
        assert_eq!(label(Some("   ")), "another client");
        assert_eq!(label(None), "another client");
        assert_eq!(label(Some("日本語")), "another client");
        assert!(label(Some(&"x".repeat(10_000))).len() <= 24);
    }
}
