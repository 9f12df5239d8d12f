//! The server's REST API and WebSockets as the client sees them: one HTTP/1.1 request per
//! connection (hyper's client connection, no pool: a CLI makes a handful of calls), JSON in and
//! out, and every failure turned into a [`ClientError`] that says what to do.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::Connection;

/// Longest a single request may take (connect, send, whole reply).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest reply body read (the biggest real one, an execution's output, is far smaller).
const REPLY_MAX_BYTES: usize = 16 * 1024 * 1024;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the server at {url}: {reason} (is it running? set --url or CM_URL)")]
    Unreachable { url: String, reason: String },
    #[error("{message} ({status} {code}){hint}")]
    Api {
        status: u16,
        code: String,
        message: String,
        hint: &'static str,
    },
    #[error("unexpected reply from the server: {0}")]
    Protocol(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

impl ClientError {
    /// 2 usage, 3 not found, 4 credential refused, 5 request refused, 1 everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => 2,
            ClientError::Api { status: 404, .. } => 3,
            ClientError::Api {
                status: 401 | 403, ..
            } => 4,
            ClientError::Api { status, .. } if *status < 500 => 5,
            _ => 1,
        }
    }

    fn from_reply(status: StatusCode, body: &Value) -> ClientError {
        let e = &body["error"];
        let hint = match status.as_u16() {
            401 => "; check CM_TOKEN or --token-file (`claude-manager token create --scope admin` makes one)",
            403 => "; this needs an admin token",
            404 => "; `claude-manager ls` lists what exists",
            _ => "",
        };
        ClientError::Api {
            status: status.as_u16(),
            code: e["code"].as_str().unwrap_or("").to_string(),
            message: e["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| status.to_string()),
            hint,
        }
    }
}

/// A server: where it is and the token.
pub struct Api {
    base: String,
    /// `host:port` as written in the URL (IPv6 in brackets): the Host header and WebSocket URL.
    authority: String,
    host: String,
    port: u16,
    prefix: String,
    token: String,
}

impl Api {
    /// From the command line: the URL checked, the token read from `--token-file` or `CM_TOKEN`.
    pub fn from_connection(conn: &Connection) -> Result<Api, ClientError> {
        let token = match &conn.token_file {
            Some(file) => read_token_file(file)?,
            None => std::env::var("CM_TOKEN")
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        if token.is_empty() {
            return Err(ClientError::Usage(
                "no API token: set CM_TOKEN or pass --token-file FILE (`claude-manager token \
                 create --scope admin` on the server makes one)"
                    .into(),
            ));
        }
        Api::new(&conn.url, token)
    }

    pub fn new(url: &str, token: String) -> Result<Api, ClientError> {
        let bad = |why: &str| ClientError::Usage(format!("--url {url:?}: {why}"));
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad(
                "only http:// is supported (use an SSH tunnel to reach a remote server)",
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad("no host"))?
            .as_str()
            .to_string();
        if authority.contains('@') {
            return Err(bad(
                "credentials in the URL are not supported: use CM_TOKEN",
            ));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let prefix = uri.path().trim_end_matches('/').to_string();
        Ok(Api {
            base: url.trim_end_matches('/').to_string(),
            authority,
            host,
            port,
            prefix,
            token,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        self.request(Method::POST, path, Some(body)).await
    }

    /// One request; a 2xx reply's JSON body (`null` when empty), else the server's error.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, path, body))
            .await
            .map_err(|_| ClientError::Unreachable {
                url: self.base.clone(),
                reason: format!("no reply within {} s", REQUEST_TIMEOUT.as_secs()),
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        };
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        // Ends with the connection: when the reply is read or the request fails.
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(hyper::header::HOST, &self.authority)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(hyper::header::ACCEPT, "application/json");
        let payload = match body {
            Some(v) => {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .map_err(|e| ClientError::Usage(format!("bad request for {path}: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), REPLY_MAX_BYTES)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the reply: {e}")))?
            .to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Protocol(format!("{status} with a body that is not JSON ({e})"))
            })?
        };
        if status.is_success() {
            Ok(value)
        } else {
            Err(ClientError::from_reply(status, &value))
        }
    }

    /// Opens the WebSocket at `path` (with its query); the upgrade's refusal is the API error.
    pub async fn websocket(&self, path: &str) -> Result<Ws, ClientError> {
        let url = format!("ws://{}{}{path}", self.authority, self.prefix);
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| ClientError::Usage(format!("bad WebSocket URL {url}: {e}")))?;
        let auth = format!("Bearer {}", self.token)
            .parse()
            .map_err(|_| ClientError::Usage("the token is not a valid header value".into()))?;
        req.headers_mut().insert("authorization", auth);
        let connect = tokio_tungstenite::connect_async(req);
        match tokio::time::timeout(REQUEST_TIMEOUT, connect).await {
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                let body = resp
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err(ClientError::from_reply(resp.status(), &body))
            }
            Ok(Err(e)) => Err(ClientError::Unreachable {
                url: self.base.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(ClientError::Unreachable {
                url: self.base.clone(),
                reason: "the WebSocket did not open in time".into(),
            }),
        }
    }
}

fn read_token_file(file: &Path) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ClientError::Usage(format!("--token-file {}: {e}", file.display())))?;
    Ok(text.trim().to_string())
}
