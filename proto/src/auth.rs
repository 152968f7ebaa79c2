//! The grid's credentials: loading a token (`GRIDCC_TOKEN`,
//! `GRIDCC_TOKEN_FILE` or a `--token-file` flag) or a coordinator's roles
//! (`--worker-token-file`, `--client-tokens`: [`Credentials`]), sending the
//! token with every call (`authorization: Bearer TOKEN`, [`AttachToken`])
//! and refusing calls without the token their method needs
//! ([`RequireTokenLayer`], which asks a [`Gate`]). Every role uses this one
//! module, so the header, the messages and the comparison cannot drift
//! apart.
//!
//! Who needs what: a worker session (`Coordinator/WorkerSession`) needs the
//! worker token; `Assign`, `Release` and a worker's `Compile` need a client
//! token; `Status` takes either. With one shared token (`--token-file`),
//! that token is both.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::metadata::{Ascii, MetadataValue};

/// Environment variable holding the token itself.
pub const TOKEN_ENV: &str = "GRIDCC_TOKEN";
/// Environment variable naming a file that holds the token.
pub const TOKEN_FILE_ENV: &str = "GRIDCC_TOKEN_FILE";

/// Message of the `Unauthenticated` status for a call that carries no token.
pub const MISSING: &str = "missing token (this grid needs GRIDCC_TOKEN or GRIDCC_TOKEN_FILE)";
/// Message of the `Unauthenticated` status for a call with another token.
pub const WRONG: &str = "wrong token";
/// Message of the `PermissionDenied` status for a client token that opens a
/// worker session.
pub const CLIENT_AS_WORKER: &str = "a client token cannot register a worker: \
     a worker session needs the grid's worker token (the coordinator's --worker-token-file)";
/// Message of the `PermissionDenied` status for the worker token on a
/// client's call.
pub const WORKER_AS_CLIENT: &str =
    "the worker token only opens worker sessions: clients need a client token";

/// The method that opens a worker session: the one call that needs the
/// worker token.
const WORKER_SESSION_PATH: &str = "/gridcc.v1.Coordinator/WorkerSession";
/// Read-only: any credential of the grid may call it.
const STATUS_PATH: &str = "/gridcc.v1.Coordinator/Status";

/// Why no token could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0} is set but empty")]
    EmptyEnv(&'static str),
    #[error("token file {0} is empty")]
    EmptyFile(PathBuf),
    #[error("cannot read the token file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("set {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")]
    Both,
    #[error("the token may hold only visible ASCII characters (no spaces or control characters)")]
    BadChars,
    #[error("client tokens file {path}, line {line}: {why}")]
    ClientTokens {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("client tokens file {0} names no client")]
    NoClients(PathBuf),
}

/// The grid's shared secret. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Token {
    /// `Bearer TOKEN`, ready to send.
    header: MetadataValue<Ascii>,
    /// Compared instead of the text: equal length, constant-time equality.
    /// Workers are sent this digest of each client token (to check them
    /// without knowing them), so nothing a browser or anyone else is given
    /// is derived from it: see `base`.
    digest: blake3::Hash,
    /// What [`Token::derive`] starts from: a key derived from the text, not
    /// from `digest`, which workers know.
    base: blake3::Hash,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from its text, surrounding whitespace removed.
    pub fn new(text: &str) -> Result<Self, AuthError> {
        let text = text.trim();
        // Visible ASCII only: it travels in an HTTP/2 header, and a space
        // inside would make "Bearer X Y" ambiguous.
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AuthError::BadChars);
        }
        let header = format!("Bearer {text}")
            .parse()
            .map_err(|_| AuthError::BadChars)?;
        Ok(Self {
            header,
            digest: blake3::hash(text.as_bytes()),
            base: blake3::Hash::from(blake3::derive_key(
                "gridcc token base 2025-01",
                text.as_bytes(),
            )),
        })
    }

    /// Reads a token file (contents trimmed).
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(AuthError::EmptyFile(path.to_owned()));
        }
        Self::new(&text)
    }

    /// Whether `presented` is the token's text itself (an HTTP form or
    /// header, not gRPC metadata); compared as [`Token::accepts`] does.
    pub fn is(&self, presented: &[u8]) -> bool {
        blake3::hash(presented) == self.digest
    }

    /// A value derived from the token for `purpose` (e.g. a browser
    /// cookie), so what a browser keeps is not the token itself and is
    /// useless anywhere but where it was issued for.
    pub fn derive(&self, purpose: &str) -> blake3::Hash {
        blake3::Hash::from(blake3::derive_key(purpose, self.base.as_bytes()))
    }

    /// Whether `given` (a whole `authorization` value) carries this token.
    /// Both sides are hashed first, so the comparison takes the same time
    /// whatever the lengths, and `blake3::Hash`'s equality is constant-time.
    #[cfg(test)]
    fn accepts(&self, given: &[u8]) -> bool {
        let presented = given.strip_prefix(b"Bearer ").unwrap_or(b"");
        blake3::hash(presented) == self.digest
    }
}

/// The token this process uses, if any: `token_file` (a `--token-file`
/// flag) wins; else `GRIDCC_TOKEN_FILE` or `GRIDCC_TOKEN` (both set is an
/// error, as is an empty one). `None` means the grid runs without a token.
pub fn load(token_file: Option<&Path>) -> Result<Option<Token>, AuthError> {
    load_with(token_file, &|k| std::env::var_os(k))
}

fn load_with(
    token_file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<Token>, AuthError> {
    if let Some(path) = token_file {
        return Token::from_file(path).map(Some);
    }
    match (env(TOKEN_ENV), env(TOKEN_FILE_ENV)) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(AuthError::Both),
        (None, Some(path)) if path.is_empty() => Err(AuthError::EmptyEnv(TOKEN_FILE_ENV)),
        (None, Some(path)) => Token::from_file(Path::new(&path)).map(Some),
        (Some(text), None) => {
            let text = text.to_str().ok_or(AuthError::BadChars)?;
            if text.trim().is_empty() {
                return Err(AuthError::EmptyEnv(TOKEN_ENV));
            }
            Token::new(text).map(Some)
        }
    }
}

/// What a coordinator accepts: one token for every role (`--token-file`,
/// or `GRIDCC_TOKEN`: a small trusted grid), or a worker token and one
/// token per client user (`--worker-token-file`, `--client-tokens`).
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Every role holds this token.
    Shared(Token),
    /// Workers hold `worker`; each client user holds one of `clients`,
    /// whose name shows in the coordinator's logs and monitor.
    Roles {
        worker: Token,
        clients: Vec<(String, Token)>,
    },
}

impl Credentials {
    /// The check a coordinator makes of every call.
    pub fn gate(&self) -> Gate {
        match self {
            Credentials::Shared(t) => Gate::shared(t),
            Credentials::Roles { worker, clients } => Gate {
                worker: Some(worker.digest),
                clients: clients
                    .iter()
                    .map(|(n, t)| (Arc::from(n.as_str()), t.digest))
                    .collect(),
            },
        }
    }

    /// The tokens a client may present, with their users' names (empty
    /// for a shared token).
    pub fn clients(&self) -> Vec<(&str, &Token)> {
        match self {
            Credentials::Shared(t) => vec![("", t)],
            Credentials::Roles { clients, .. } => {
                clients.iter().map(|(n, t)| (n.as_str(), t)).collect()
            }
        }
    }

    /// What a worker is told so it can check its clients' tokens: each
    /// user's name and the blake3 digest of its token (enough to check a
    /// token, not to present one).
    pub fn client_digests(&self) -> Vec<(String, [u8; 32])> {
        self.clients()
            .into_iter()
            .map(|(n, t)| (n.to_owned(), *t.digest.as_bytes()))
            .collect()
    }
}

/// Reads a `--client-tokens` file: one `NAME TOKEN` per line, `#` comments
/// and blank lines ignored. Names and tokens must be unique.
pub fn load_client_tokens(path: &Path) -> Result<Vec<(String, Token)>, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let bad = |line: usize, why: &str| AuthError::ClientTokens {
        path: path.to_owned(),
        line,
        why: why.to_owned(),
    };
    let mut clients: Vec<(String, Token)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad(n, "expected `NAME TOKEN`"));
        };
        if name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
        {
            return Err(bad(
                n,
                "a name is at most 64 letters, digits and . _ @ - characters",
            ));
        }
        let token = Token::new(token).map_err(|e| bad(n, &e.to_string()))?;
        if clients.iter().any(|(other, _)| other == name) {
            return Err(bad(n, &format!("the name {name} is given twice")));
        }
        if clients.iter().any(|(_, t)| t.digest == token.digest) {
            return Err(bad(
                n,
                "this token is given to another name already (each user needs their own)",
            ));
        }
        clients.push((name.to_owned(), token));
    }
    if clients.is_empty() {
        return Err(AuthError::NoClients(path.to_owned()));
    }
    Ok(clients)
}

/// Who made a call, as the [`Gate`] found: put into the request's
/// extensions by [`RequireTokenLayer`], so a service can name its caller.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The client user's name from `--client-tokens`; `None` with a shared
    /// token, with no token at all, or for a worker.
    pub name: Option<Arc<str>>,
}

/// The check a server makes of each call's token, by the role its method
/// needs. Holds digests only.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The worker token; `None`: no worker session is accepted here.
    worker: Option<blake3::Hash>,
    /// Client users (a name may be empty: a shared token).
    clients: Vec<(Arc<str>, blake3::Hash)>,
}

impl Gate {
    /// One token for every role.
    pub fn shared(token: &Token) -> Self {
        Self {
            worker: Some(token.digest),
            clients: vec![(Arc::from(""), token.digest)],
        }
    }

    /// A worker's gate once its coordinator told it the client tokens
    /// (`Welcome.client_tokens`): those, and no worker token. `None` when
    /// the list is empty or malformed (an older coordinator, or one without
    /// tokens): the worker keeps the gate it has.
    pub fn from_client_digests<'a>(
        list: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Option<Self> {
        let clients = list
            .into_iter()
            .map(|(name, digest)| {
                let digest = <[u8; 32]>::try_from(digest).ok()?;
                Some((Arc::from(name), blake3::Hash::from(digest)))
            })
            .collect::<Option<Vec<_>>>()?;
        (!clients.is_empty()).then_some(Self {
            worker: None,
            clients,
        })
    }

    /// Checks `authorization` (a whole header value) for a call to `path`.
    /// Every digest is compared, so the time taken does not say which one
    /// matched.
    pub fn check(&self, path: &str, authorization: Option<&[u8]>) -> Result<Caller, Refusal> {
        let Some(given) = authorization else {
            return Err(Refusal::Missing);
        };
        let presented = blake3::hash(given.strip_prefix(b"Bearer ").unwrap_or(b"\0"));
        let is_worker = self.worker.is_some_and(|w| w == presented);
        let mut client = None;
        for (name, digest) in &self.clients {
            if *digest == presented {
                client = Some(name);
            }
        }
        let name = client.filter(|n| !n.is_empty()).cloned();
        match (path, is_worker, client.is_some()) {
            (_, false, false) => Err(Refusal::Wrong),
            (WORKER_SESSION_PATH, true, _) | (STATUS_PATH, _, _) => Ok(Caller { name }),
            (WORKER_SESSION_PATH, false, true) => Err(Refusal::ClientAsWorker),
            (_, _, true) => Ok(Caller { name }),
            (_, true, false) => Err(Refusal::WorkerAsClient),
        }
    }
}

/// Why a [`Gate`] refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Wrong,
    ClientAsWorker,
    WorkerAsClient,
}

impl Refusal {
    /// The status the caller gets: `Unauthenticated` for a missing or
    /// unknown token (clients never retry it), `PermissionDenied` for a
    /// known token used in another role.
    pub fn status(self) -> tonic::Status {
        match self {
            Refusal::Missing => tonic::Status::unauthenticated(MISSING),
            Refusal::Wrong => tonic::Status::unauthenticated(WRONG),
            Refusal::ClientAsWorker => tonic::Status::permission_denied(CLIENT_AS_WORKER),
            Refusal::WorkerAsClient => tonic::Status::permission_denied(WORKER_AS_CLIENT),
        }
    }

    /// The few words a server's log gives it.
    fn short(self) -> &'static str {
        match self {
            Refusal::Missing => "missing token",
            Refusal::Wrong => WRONG,
            Refusal::ClientAsWorker => "a client token tried to register a worker",
            Refusal::WorkerAsClient => "the worker token was used as a client's",
        }
    }
}

/// A server's gate, replaceable while it runs (a worker's, when its
/// coordinator tells it the client tokens). `None` lets every call in.
pub type GateCell = Arc<std::sync::RwLock<Option<Arc<Gate>>>>;

/// Client side: adds the token (when there is one) to every request.
/// Use with `XClient::with_interceptor(channel, AttachToken::new(token))`.
#[derive(Debug, Clone, Default)]
pub struct AttachToken(Option<MetadataValue<Ascii>>);

impl AttachToken {
    pub fn new(token: Option<&Token>) -> Self {
        Self(token.map(|t| t.header.clone()))
    }
}

impl tonic::service::Interceptor for AttachToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

/// The channel type of every gridcc client: a tonic channel whose requests
/// carry the token.
pub type AuthChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AttachToken>;

/// Server side: a tower layer that refuses every call without the token
/// its method needs (see [`Gate::check`]), before any service sees it, and
/// logs who was refused and for what; a call let in carries its
/// [`Caller`] in its extensions. Without a gate it lets everything through.
///
/// A layer rather than a tonic interceptor: an interceptor is not told the
/// method called, and both the check and the log line need it.
#[derive(Debug, Clone)]
pub struct RequireTokenLayer(GateCell);

impl RequireTokenLayer {
    pub fn new(gate: Option<Gate>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(gate.map(Arc::new))))
    }

    /// The gate this layer asks, to replace it while the server runs.
    pub fn cell(&self) -> GateCell {
        Arc::clone(&self.0)
    }
}

impl<S> tower_layer::Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            gate: Arc::clone(&self.0),
        }
    }
}

/// The service [`RequireTokenLayer`] wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct RequireToken<S> {
    inner: S,
    gate: GateCell,
}

fn peer<B>(request: &http::Request<B>) -> String {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let ext = request.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
        .map_or_else(|| "an unknown peer".to_owned(), |a| a.to_string())
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, R> tower_service::Service<http::Request<B>> for RequireToken<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let gate = self.gate.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(gate) = gate {
            let given = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            match gate.check(request.uri().path(), given) {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                }
                Err(why) => {
                    tracing::warn!(
                        "refused unauthenticated call from {} to {}: {}",
                        peer(&request),
                        request.uri().path(),
                        why.short()
                    );
                    let response = why.status().into_http::<R>();
                    return Box::pin(std::future::ready(Ok(response)));
                }
            }
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn token_sources_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  s3cret\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n \n").unwrap();
        let file_s = file.to_str().unwrap();

        assert!(load_with(None, &env(&[])).unwrap().is_none());
        let from_env = load_with(None, &env(&[(TOKEN_ENV, "s3cret")]))
            .unwrap()
            .unwrap();
        let from_file = load_with(None, &env(&[(TOKEN_FILE_ENV, file_s)]))
            .unwrap()
            .unwrap();
        assert_eq!(
            from_env.digest, from_file.digest,
            "file contents are trimmed"
        );
        // The flag wins over the environment.
        let flag = load_with(Some(&file), &env(&[(TOKEN_ENV, "other")]))
            .unwrap()
            .unwrap();
        assert_eq!(flag.digest, from_env.digest);

        assert!(matches!(
            load_with(None, &env(&[(TOKEN_ENV, " ")])),
            Err(AuthError::EmptyEnv(TOKEN_ENV))
        ));
        assert!(matches!(
            load_with(None, &env(&[(TOKEN_FILE_ENV, "")])),
            Err(AuthError::EmptyEnv(TOKEN_FILE_ENV))
        ));
        assert!(matches!(
            load_with(Some(&empty), &env(&[])),
            Err(AuthError::EmptyFile(_))
        ));
        assert!(matches!(
            load_with(Some(&dir.path().join("absent")), &env(&[])),
            Err(AuthError::ReadFile { .. })
        ));
        assert!(matches!(
            load_with(None, &env(&[(TOKEN_ENV, "a"), (TOKEN_FILE_ENV, file_s)])),
            Err(AuthError::Both)
        ));
        assert!(matches!(Token::new("two words"), Err(AuthError::BadChars)));
        assert!(matches!(Token::new("tab\there"), Err(AuthError::BadChars)));
    }

    #[test]
    fn accepts_only_the_bearer_form_of_the_same_token() {
        let token = Token::new("s3cret").unwrap();
        assert!(token.accepts(b"Bearer s3cret"));
        assert!(!token.accepts(b"Bearer s3cre"));
        assert!(!token.accepts(b"Bearer s3cret2"));
        assert!(!token.accepts(b"s3cret"));
        assert!(!token.accepts(b"Bearer "));
        assert!(!token.accepts(b""));
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }

    #[test]
    fn attach_token_sets_the_header_only_when_there_is_one() {
        use tonic::service::Interceptor;
        let token = Token::new("s3cret").unwrap();
        let request = AttachToken::new(Some(&token))
            .call(tonic::Request::new(()))
            .unwrap();
        let value = request.metadata().get("authorization").unwrap();
        assert!(token.accepts(value.as_bytes()));
        let request = AttachToken::new(None)
            .call(tonic::Request::new(()))
            .unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn each_method_needs_the_token_of_its_role() {
        let worker = Token::new("w0rker").unwrap();
        let alice = Token::new("al1ce").unwrap();
        let roles = Credentials::Roles {
            worker: worker.clone(),
            clients: vec![("alice".to_owned(), alice.clone())],
        };
        let gate = roles.gate();
        let session = WORKER_SESSION_PATH;
        let assign = "/gridcc.v1.Coordinator/Assign";
        let compile = "/gridcc.v1.Worker/Compile";
        let bearer = |t: &str| format!("Bearer {t}").into_bytes();
        let check = |path, t: Option<&str>| {
            let header = t.map(bearer);
            gate.check(path, header.as_deref())
                .map(|c| c.name.map(|n| n.to_string()))
        };
        assert_eq!(check(session, Some("w0rker")), Ok(None));
        assert_eq!(check(session, Some("al1ce")), Err(Refusal::ClientAsWorker));
        assert_eq!(check(session, Some("other")), Err(Refusal::Wrong));
        assert_eq!(check(session, None), Err(Refusal::Missing));
        assert_eq!(check(assign, Some("al1ce")), Ok(Some("alice".to_owned())));
        assert_eq!(check(assign, Some("w0rker")), Err(Refusal::WorkerAsClient));
        assert_eq!(check(STATUS_PATH, Some("w0rker")), Ok(None));
        assert_eq!(
            check(STATUS_PATH, Some("al1ce")),
            Ok(Some("alice".to_owned()))
        );
        assert_eq!(check(STATUS_PATH, Some("x")), Err(Refusal::Wrong));

        // A worker told the client digests takes exactly those.
        let digests = roles.client_digests();
        let on_worker =
            Gate::from_client_digests(digests.iter().map(|(n, d)| (n.as_str(), &d[..]))).unwrap();
        let header = bearer("al1ce");
        assert!(on_worker.check(compile, Some(&header)).is_ok());
        let header = bearer("w0rker");
        assert_eq!(
            on_worker.check(compile, Some(&header)).unwrap_err(),
            Refusal::Wrong
        );
        assert!(Gate::from_client_digests([("a", &[0u8; 5][..])]).is_none());
        assert!(Gate::from_client_digests(std::iter::empty()).is_none());

        // One shared token is every role, and names nobody.
        let shared = Credentials::Shared(alice.clone()).gate();
        let header = bearer("al1ce");
        assert_eq!(shared.check(session, Some(&header)).unwrap().name, None);
        assert!(shared.check(assign, Some(&header)).is_ok());
        // What a browser is given is not derived from what workers know.
        assert_ne!(
            alice.derive("cookie"),
            blake3::Hash::from(blake3::derive_key("cookie", alice.digest.as_bytes()))
        );
    }

    #[test]
    fn client_tokens_files_are_checked_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = |text: &str| {
            let path = dir.path().join("clients");
            std::fs::write(&path, text).unwrap();
            load_client_tokens(&path)
        };
        let ok = file("# users\nalice tok-a\n\n  bob  tok-b  \n").unwrap();
        let names: Vec<&str> = ok.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        for (text, line) in [
            ("alice\n", 1),
            ("alice a b\n", 1),
            ("alice a\nalice b\n", 2),
            ("alice a\nbob a\n", 2),
            ("al/ice a\n", 1),
        ] {
            match file(text) {
                Err(AuthError::ClientTokens { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(file("# none\n"), Err(AuthError::NoClients(_))));
    }
}
