//! The coordinator's HTTP port (`--http-listen`, once `--metrics-listen`):
//! the monitor page at `/`, its JSON API under `/api/v1/`, the live event
//! stream (Server-Sent Events), and `/metrics` for Prometheus.
//!
//! A small HTTP/1.1 responder, one request per connection, in the shape of
//! `gridcc_proto::metrics::serve`: heads and bodies are size-limited,
//! connections are counted, and every answer closes the connection but
//! the event stream's. The page's files are compiled in (`assets/`), so
//! a grid without internet access serves the whole page.
//!
//! With a grid token, the page, the API and the stream answer 401 (and no
//! data) unless the request carries `Authorization: Bearer TOKEN` or the
//! cookie the login form sets: a value derived from the token, HttpOnly
//! and SameSite=Strict, so a script cannot read it and another site
//! cannot send it. `/metrics` stays open as it always was (it shows
//! counts, no names). With `--tls-cert` the port speaks TLS; a plain
//! request still gets `/metrics` (scrapers configured before), and the
//! page and the API refuse it.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::monitor::{Frame, Monitor};
use crate::service::{unix_ms, Shared};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const MONITOR_JS: &str = include_str!("../assets/monitor.js");
const MONITOR_CSS: &str = include_str!("../assets/monitor.css");
const LOGIN_HTML: &str = include_str!("../assets/login.html");

/// Largest request head; browsers send well under 8 KiB.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest body (only the login form has one).
const MAX_BODY_BYTES: usize = 4 * 1024;
/// Connections served at once, event streams included.
const MAX_CONNECTIONS: usize = 64;
/// Time to send a whole request (or to take one answer or event).
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most jobs in one `GET /api/v1/jobs` answer.
const MAX_JOBS_PAGE: usize = 5_000;
/// The cookie the login form sets.
const COOKIE: &str = "gridcc_monitor";
/// What the cookie's value is derived from the token for.
const COOKIE_PURPOSE: &str = "gridcc coordinator monitor cookie v1";

/// What the HTTP port needs from the coordinator.
pub(crate) struct Web {
    pub(crate) shared: Arc<Shared>,
    pub(crate) monitor: Arc<Monitor>,
    pub(crate) credentials: Option<Arc<gridcc_proto::auth::Credentials>>,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves the HTTP port until `shutdown`, then waits for its connections.
pub(crate) async fn serve(listener: TcpListener, web: Arc<Web>, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let tasks = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            conn = listener.accept() => match conn {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::debug!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!(%peer, "http: too many connections; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let web = Arc::clone(&web);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let _permit = permit;
            connection(&web, stream, &shutdown).await;
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// How a connection reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Plain,
    Tls,
    /// Plain TCP on a port that serves TLS: `/metrics` only.
    PlainOnTls,
}

async fn connection(web: &Web, stream: TcpStream, shutdown: &CancellationToken) {
    let Some(acceptor) = &web.tls else {
        return exchange(web, stream, Transport::Plain, shutdown).await;
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(IO_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    // 0x16 starts every TLS handshake record; no HTTP method does.
    if first[0] != 0x16 {
        return exchange(web, stream, Transport::PlainOnTls, shutdown).await;
    }
    let handshake = tokio::time::timeout(
        gridcc_proto::tls::SERVER_HANDSHAKE_TIMEOUT,
        acceptor.accept(stream),
    );
    match handshake.await {
        Ok(Ok(tls)) => exchange(web, tls, Transport::Tls, shutdown).await,
        Ok(Err(e)) => tracing::debug!(error = %e, "http: TLS handshake failed"),
        Err(_) => tracing::debug!("http: TLS handshake timed out"),
    }
}

/// One parsed request.
#[derive(Debug, Default, PartialEq)]
struct Request {
    method: String,
    path: String,
    query: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// Why a request could not be read.
#[derive(Debug, PartialEq, Eq)]
enum BadRequest {
    /// The peer closed before sending anything (a port check).
    Empty,
    TooLarge,
    Malformed,
}

/// Parses a request head (everything before the blank line).
fn parse_head(head: &[u8]) -> Result<Request, BadRequest> {
    let text = std::str::from_utf8(head).map_err(|_| BadRequest::Malformed)?;
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let request_line = lines.next().ok_or(BadRequest::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest::Malformed);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(BadRequest::Malformed);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(BadRequest::Malformed)?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Vec::new(),
    })
}

/// Reads one request: its head, then a body of at most [`MAX_BODY_BYTES`].
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Request, BadRequest> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(BadRequest::TooLarge);
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) if buf.is_empty() => return Err(BadRequest::Empty),
            Ok(0) | Err(_) => return Err(BadRequest::Malformed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let mut request = parse_head(&buf[..head_end - 4])?;
    let length: usize = match request.header("content-length") {
        Some(v) => v.parse().map_err(|_| BadRequest::Malformed)?,
        None => 0,
    };
    if length > MAX_BODY_BYTES {
        return Err(BadRequest::TooLarge);
    }
    let mut body = buf.split_off(head_end);
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(BadRequest::Malformed),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(length);
    request.body = body;
    Ok(request)
}

/// One answer (not the event stream).
struct Response {
    status: &'static str,
    content_type: &'static str,
    headers: Vec<String>,
    body: String,
}

impl Response {
    fn new(status: &'static str, content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn json(body: String) -> Self {
        Self::new("200 OK", "application/json", body)
    }

    fn text(status: &'static str, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    fn error_json(status: &'static str, message: &str) -> Self {
        Self::new(
            status,
            "application/json",
            serde_json::json!({ "error": message }).to_string(),
        )
    }

    fn with(mut self, header: String) -> Self {
        self.headers.push(header);
        self
    }

    fn bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            self.content_type,
            self.body.len(),
        );
        for header in self
            .headers
            .iter()
            .map(String::as_str)
            .chain(SECURITY_HEADERS.iter().copied())
        {
            out.push_str(header);
            out.push_str("\r\n");
        }
        out.push_str("Connection: close\r\n\r\n");
        let mut out = out.into_bytes();
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// Sent with every answer: nothing cached, nothing framed, scripts and
/// styles only from this port (the page has no inline script).
const SECURITY_HEADERS: &[&str] = &[
    "Cache-Control: no-store",
    "X-Content-Type-Options: nosniff",
    "X-Frame-Options: DENY",
    "Referrer-Policy: no-referrer",
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
];

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    web: &Web,
    mut stream: S,
    transport: Transport,
    shutdown: &CancellationToken,
) {
    let request = match tokio::time::timeout(IO_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(r)) => r,
        Ok(Err(BadRequest::Empty)) => return,
        Ok(Err(BadRequest::TooLarge)) => {
            let answer = Response::text("413 Content Too Large", "request too large");
            return finish(stream, answer.bytes(false)).await;
        }
        Ok(Err(BadRequest::Malformed)) => {
            let answer = Response::text("400 Bad Request", "bad request");
            return finish(stream, answer.bytes(false)).await;
        }
        Err(_) => return,
    };
    let head_only = request.method == "HEAD";
    // The stream keeps the connection; a refused one is answered below.
    if request.path == "/api/v1/events"
        && request.method == "GET"
        && transport != Transport::PlainOnTls
        && web.authorized(&request)
    {
        return events(web, stream, shutdown).await;
    }
    let answer = route(web, &request, transport);
    finish(stream, answer.bytes(head_only)).await;
}

async fn finish<S: AsyncWrite + Unpin>(mut stream: S, bytes: Vec<u8>) {
    // The client may be gone already; nothing to do about it.
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

impl Web {
    /// Whether a request may see the grid's data.
    /// Any client token opens it (the worker token does not).
    fn authorized(&self, request: &Request) -> bool {
        let Some(credentials) = &self.credentials else {
            return true;
        };
        let tokens = credentials.clients();
        if let Some(bearer) = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return tokens.iter().any(|(_, t)| t.is(bearer.trim().as_bytes()));
        }
        request
            .cookie(COOKIE)
            .and_then(|v| blake3::Hash::from_hex(v).ok())
            // blake3::Hash compares in constant time.
            .is_some_and(|presented| {
                tokens
                    .iter()
                    .any(|(_, t)| presented == t.derive(COOKIE_PURPOSE))
            })
    }

    fn login(&self, request: &Request, transport: Transport) -> Response {
        let Some(credentials) = &self.credentials else {
            return redirect_home();
        };
        let presented = std::str::from_utf8(&request.body)
            .ok()
            .and_then(|form| {
                form.split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(n, _)| *n == "token")
                    .map(|(_, v)| form_decode(v))
            })
            .unwrap_or_default();
        let tokens = credentials.clients();
        let Some((_, token)) = tokens
            .iter()
            .find(|(_, t)| t.is(presented.trim().as_bytes()))
        else {
            return login_page("wrong token");
        };
        let secure = if transport == Transport::Tls {
            "; Secure"
        } else {
            ""
        };
        redirect_home().with(format!(
            "Set-Cookie: {COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
            token.derive(COOKIE_PURPOSE).to_hex()
        ))
    }
}

fn redirect_home() -> Response {
    Response::text("303 See Other", "see /").with("Location: /".to_owned())
}

fn login_page(message: &str) -> Response {
    let body = LOGIN_HTML.replace("{{message}}", message);
    Response::new("401 Unauthorized", "text/html; charset=utf-8", body)
}

/// Decodes an `application/x-www-form-urlencoded` value.
fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| char::from(b).to_digit(16);
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(web: &Web, request: &Request, transport: Transport) -> Response {
    let method = request.method.as_str();
    let path = request.path.as_str();
    if !matches!(method, "GET" | "HEAD" | "POST") {
        return Response::text("405 Method Not Allowed", "method not allowed");
    }
    if path == "/metrics" {
        if method == "POST" {
            return Response::text("405 Method Not Allowed", "method not allowed");
        }
        return Response::new(
            "200 OK",
            gridcc_proto::metrics::CONTENT_TYPE,
            web.shared.metrics_text(),
        );
    }
    if transport == Transport::PlainOnTls {
        return Response::text(
            "400 Bad Request",
            "this port serves the monitor over TLS only: use https://",
        );
    }
    match (method, path) {
        ("GET" | "HEAD", "/monitor.js") => {
            return Response::new("200 OK", "text/javascript; charset=utf-8", MONITOR_JS)
        }
        ("GET" | "HEAD", "/monitor.css") => {
            return Response::new("200 OK", "text/css; charset=utf-8", MONITOR_CSS)
        }
        ("POST", "/login") => return web.login(request, transport),
        _ => {}
    }
    let api = path.starts_with("/api/");
    if !web.authorized(request) {
        return if api {
            Response::error_json("401 Unauthorized", "this grid needs its token")
                .with("WWW-Authenticate: Bearer".to_owned())
        } else {
            login_page("")
        };
    }
    let monitor = &web.monitor;
    match (method, path) {
        ("GET" | "HEAD", "/") => Response::new("200 OK", "text/html; charset=utf-8", INDEX_HTML),
        ("GET" | "HEAD", "/api/v1/workers") => Response::json(monitor.workers_json()),
        ("GET" | "HEAD", "/api/v1/state") => Response::json(monitor.snapshot_json(unix_ms())),
        ("GET" | "HEAD", "/api/v1/jobs") => {
            let number = |name: &str, default: u64| match request.query_param(name) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map_err(|_| {
                    Response::error_json(
                        "400 Bad Request",
                        &format!("{name} must be a whole number, got {v:?}"),
                    )
                }),
            };
            let (since, limit) = match (number("since", 0), number("limit", 1000)) {
                (Ok(s), Ok(l)) => (s, l),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            let limit = (limit as usize).min(MAX_JOBS_PAGE);
            let page = monitor.jobs(since, limit);
            Response::json(serde_json::to_string(&page).unwrap_or_default())
        }
        ("POST", _) => Response::text("405 Method Not Allowed", "method not allowed"),
        _ if api => Response::error_json("404 Not Found", "no such API path"),
        _ => Response::text("404 Not Found", "not found"),
    }
}

/// The event stream: the snapshot, then each batch of changes, until the
/// browser leaves or the coordinator stops. The monitor gathers changes
/// into batches (`monitor::stream::EVENT_BATCH`) shared by every stream,
/// so a stream wakes and writes once per batch and does no work per job. A
/// stream that falls more than the channel's buffer behind starts over
/// from a new snapshot.
async fn events<S: AsyncWrite + Unpin>(web: &Web, mut stream: S, shutdown: &CancellationToken) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n{}\r\n",
        SECURITY_HEADERS
            .iter()
            .fold(String::new(), |acc, h| acc + h + "\r\n")
    );
    let (snapshot, mut rx) = web.monitor.subscribe(unix_ms());
    let mut out: Frame = Frame::from([head.as_bytes(), &snapshot].concat());
    // One wait for shutdown for the stream's life, not one per batch.
    let stop = shutdown.cancelled();
    tokio::pin!(stop);
    loop {
        // A batch mostly fits the socket's buffer at once; only a write
        // that has to wait (a stalled browser) needs the timer.
        let mut write = std::pin::pin!(stream.write_all(&out));
        let written = match std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(done) => done,
            Poll::Pending => match tokio::time::timeout(IO_TIMEOUT, write).await {
                Ok(done) => done,
                Err(_) => return,
            },
        };
        if written.is_err() {
            return;
        }
        out = tokio::select! {
            // In this order: no random draw per batch.
            biased;
            next = rx.recv() => match next {
                Ok(batch) => batch,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (snapshot, fresh) = web.monitor.subscribe(unix_ms());
                    rx = fresh;
                    Frame::from(snapshot)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = &mut stop => return,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_refuses_bad_ones() {
        let r = parse_head(
            b"GET /api/v1/jobs?since=5&limit=2 HTTP/1.1\r\nHost: x\r\nCookie: a=1; gridcc_monitor=ff",
        )
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/v1/jobs")
        );
        assert_eq!(r.query_param("since"), Some("5"));
        assert_eq!(r.query_param("limit"), Some("2"));
        assert_eq!(r.query_param("nope"), None);
        assert_eq!(r.header("host"), Some("x"));
        assert_eq!(r.cookie(COOKIE), Some("ff"));
        for bad in [
            &b"GET"[..],
            b"GET /x",
            b"GET x HTTP/1.1",
            b"GET / SPDY/3",
            b"GET / HTTP/1.1\r\nno colon",
            b"\xff\xfe / HTTP/1.1",
        ] {
            assert_eq!(parse_head(bad), Err(BadRequest::Malformed), "{bad:?}");
        }
    }

    /// A coordinator with `--tls-cert` serves its HTTP port over TLS: the
    /// API answers over https, a plain request gets only `/metrics`.
    #[tokio::test]
    async fn with_tls_the_port_speaks_tls_and_plain_gets_only_metrics() {
        use tokio_rustls::rustls;

        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let config = crate::Config {
            tls: Some(gridcc_proto::tls::ServerTls::load(&cert_path, &key_path).unwrap()),
            ..crate::Config::default()
        };
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = http.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(crate::run_with_http(
            config,
            grpc,
            Some(http),
            shutdown.clone(),
        ));

        async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, path: &str) -> String {
            let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            s.write_all(request.as_bytes()).await.unwrap();
            let mut reply = Vec::new();
            let _ = s.read_to_end(&mut reply).await;
            String::from_utf8_lossy(&reply).into_owned()
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector
            .connect(name, TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        let reply = exchange(tls, "/api/v1/workers").await;
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.ends_with("{\"workers\":[]}"), "{reply}");

        let plain = exchange(TcpStream::connect(addr).await.unwrap(), "/api/v1/workers").await;
        assert!(plain.starts_with("HTTP/1.1 400 "), "{plain}");
        assert!(plain.contains("use https://"), "{plain}");
        assert!(!plain.contains("workers\":"), "{plain}");
        let metrics = exchange(TcpStream::connect(addr).await.unwrap(), "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(
            metrics.contains("gridcc_coordinator_workers 0"),
            "{metrics}"
        );
        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn decodes_form_values() {
        assert_eq!(form_decode("a%2Bb+c%zz%4"), "a+b c%zz%4");
        assert_eq!(form_decode("s3cr%21t"), "s3cr!t");
        assert_eq!(form_decode("%"), "%");
    }
}
