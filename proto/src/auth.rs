//! The grid's shared secret: loading it (`GRIDCC_TOKEN`, `GRIDCC_TOKEN_FILE`
//! or a `--token-file` flag), sending it with every call
//! (`authorization: Bearer TOKEN`, [`AttachToken`]) and refusing calls
//! without it ([`RequireTokenLayer`]). Every role uses this one module, so
//! the header, the messages and the comparison cannot drift apart.

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
}

/// The grid's shared secret. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Token {
    /// `Bearer TOKEN`, ready to send.
    header: MetadataValue<Ascii>,
    /// Compared instead of the text: equal length, constant-time equality.
    digest: blake3::Hash,
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
        blake3::Hash::from(blake3::derive_key(purpose, self.digest.as_bytes()))
    }

    /// Whether `given` (a whole `authorization` value) carries this token.
    /// Both sides are hashed first, so the comparison takes the same time
    /// whatever the lengths, and `blake3::Hash`'s equality is constant-time.
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

/// Server side: a tower layer that refuses (`Unauthenticated`) every call
/// without the right token, before any service sees it, and logs who was
/// refused and for what. Without a token it lets everything through.
///
/// A layer rather than a tonic interceptor: an interceptor is not told the
/// method called, and the log line should name it.
#[derive(Debug, Clone)]
pub struct RequireTokenLayer(Option<Arc<Token>>);

impl RequireTokenLayer {
    pub fn new(token: Option<Token>) -> Self {
        Self(token.map(Arc::new))
    }
}

impl<S> tower_layer::Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            token: self.0.clone(),
        }
    }
}

/// The service [`RequireTokenLayer`] wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct RequireToken<S> {
    inner: S,
    token: Option<Arc<Token>>,
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(token) = &self.token {
            let refusal = match request.headers().get(http::header::AUTHORIZATION) {
                None => Some(MISSING),
                Some(given) if !token.accepts(given.as_bytes()) => Some(WRONG),
                Some(_) => None,
            };
            if let Some(why) = refusal {
                let short = if why == MISSING { "missing token" } else { why };
                tracing::warn!(
                    "refused unauthenticated call from {} to {}: {short}",
                    peer(&request),
                    request.uri().path()
                );
                let response = tonic::Status::unauthenticated(why).into_http::<R>();
                return Box::pin(std::future::ready(Ok(response)));
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
}
