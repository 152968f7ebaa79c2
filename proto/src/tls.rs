//! TLS (rustls, ring) for every gridcc connection: the servers' certificate
//! and key, the CA a client checks servers against, the endpoint a client
//! builds from a URL, and one-line explanations for the mistakes that would
//! otherwise surface as bare transport errors (a plain client on a TLS port
//! and the reverse).
//!
//! The rule a grid follows: `https://` in a URL means TLS, and a client
//! that talks TLS to the coordinator talks TLS to the workers it is sent to
//! ([`worker_url`]); `http://` means plain TCP, chosen explicitly. A client
//! never downgrades on its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// Environment variable naming the CA file a client checks servers with.
pub const CA_ENV: &str = "GRIDCC_TLS_CA";

/// How long a TLS handshake may take before the connection counts as failed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why TLS could not be set up, or a URL does not fit the TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path} holds no PEM {expected}")]
    NotPem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("bad TLS certificate or key ({cert}, {key}): {detail}")]
    BadIdentity {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("bad URL {url:?}: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("{url} uses TLS (https://) but no CA is given to check the server with (--tls-ca or GRIDCC_TLS_CA)")]
    NoCa { url: String },
    #[error("a TLS CA is given but {url} is plain TCP; use https:// (or drop the CA to run without TLS)")]
    CaWithoutHttps { url: String },
    #[error("cannot set up TLS for {url}: {detail}")]
    Client { url: String, detail: String },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn require_pem(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
    expected: &'static str,
    labels: &[&str],
) -> Result<(), TlsError> {
    let text = String::from_utf8_lossy(bytes);
    if labels
        .iter()
        .any(|label| text.contains(&format!("-----BEGIN {label}-----")))
    {
        Ok(())
    } else {
        Err(TlsError::NotPem {
            what,
            path: path.to_owned(),
            expected,
        })
    }
}

/// A server's certificate chain and private key, checked at load time so a
/// bad file stops the server before it announces its address.
#[derive(Clone)]
pub struct ServerTls {
    config: ServerTlsConfig,
    /// The same identity for servers that are not tonic (the coordinator's
    /// HTTP port).
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls(..)")
    }
}

impl ServerTls {
    /// Loads a PEM certificate chain and its PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = read("TLS certificate", cert)?;
        let key_pem = read("TLS key", key)?;
        require_pem(
            "TLS certificate",
            cert,
            &cert_pem,
            "certificate",
            &["CERTIFICATE"],
        )?;
        require_pem(
            "TLS key",
            key,
            &key_pem,
            "private key",
            &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"],
        )?;
        let bad_identity = |detail: String| TlsError::BadIdentity {
            cert: cert.to_owned(),
            key: key.to_owned(),
            detail,
        };
        let acceptor = rustls_acceptor(&cert_pem, &key_pem).map_err(bad_identity)?;
        let config = ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem));
        // tonic parses the PEM only when a server takes the config; do it
        // now to report a bad file as such.
        tonic::transport::Server::builder()
            .tls_config(config.clone())
            .map_err(|e| TlsError::BadIdentity {
                cert: cert.to_owned(),
                key: key.to_owned(),
                detail: error_chain(&e),
            })?;
        Ok(Self { config, acceptor })
    }

    /// The tonic server configuration.
    pub fn config(&self) -> ServerTlsConfig {
        self.config.clone()
    }

    /// The same identity as a rustls acceptor for plain HTTP/1.1 servers,
    /// with the handshake timeout tonic uses.
    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}

/// How long a server waits for a client's TLS handshake.
pub const SERVER_HANDSHAKE_TIMEOUT: Duration = HANDSHAKE_TIMEOUT;

/// A rustls (ring) acceptor for one PEM identity, offering HTTP/1.1.
fn rustls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| e.to_string())?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// The CA a client checks servers' certificates against.
#[derive(Debug, Clone)]
pub struct ClientTls {
    ca: Certificate,
}

impl ClientTls {
    /// Loads a PEM CA certificate (bundle).
    pub fn load(ca: &Path) -> Result<Self, TlsError> {
        let pem = read("TLS CA", ca)?;
        require_pem("TLS CA", ca, &pem, "certificate", &["CERTIFICATE"])?;
        Ok(Self {
            ca: Certificate::from_pem(pem),
        })
    }

    /// `flag` (a `--tls-ca` flag) if given, else `GRIDCC_TLS_CA`, else none.
    pub fn from_flag_or_env(flag: Option<&Path>) -> Result<Option<Self>, TlsError> {
        let env = std::env::var_os(CA_ENV).filter(|v| !v.is_empty());
        match flag.map(Path::to_owned).or(env.map(PathBuf::from)) {
            Some(path) => Self::load(&path).map(Some),
            None => Ok(None),
        }
    }
}

/// Whether `url` asks for TLS.
pub fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The endpoint for `url`: TLS checked against `tls`'s CA for `https://`,
/// plain TCP for `http://`. A mismatch (https without a CA, a CA with
/// http) is an error rather than a silent downgrade or a doomed handshake.
/// The server name checked is the URL's host (an IP address works when the
/// certificate has it as an IP SAN).
pub fn endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, TlsError> {
    let bad = |detail: String| TlsError::BadUrl {
        url: url.to_owned(),
        detail,
    };
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| bad(e.to_string()))?;
    match (endpoint.uri().scheme_str(), tls) {
        (Some("https"), Some(tls)) => endpoint
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(tls.ca.clone())
                    .timeout(HANDSHAKE_TIMEOUT),
            )
            .map_err(|e| TlsError::Client {
                url: url.to_owned(),
                detail: error_chain(&e),
            }),
        (Some("https"), None) => Err(TlsError::NoCa {
            url: url.to_owned(),
        }),
        (Some("http"), Some(_)) => Err(TlsError::CaWithoutHttps {
            url: url.to_owned(),
        }),
        (Some("http"), None) => Ok(endpoint),
        _ => Err(bad("the scheme must be http:// or https://".into())),
    }
}

/// The URL of a worker the coordinator at `coordinator_url` sent a client
/// to: the same scheme, so a TLS grid is TLS on every hop.
pub fn worker_url(coordinator_url: &str, worker_addr: &str) -> String {
    let scheme = if is_https(coordinator_url) {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{worker_addr}")
}

/// An error with its sources, `outer: inner: innermost`: tonic's transport
/// errors say only "transport error" at the top.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    chain(e.to_string(), e.source())
}

fn chain(mut msg: String, mut source: Option<&dyn std::error::Error>) -> String {
    while let Some(s) = source {
        let text = s.to_string();
        // hyper and tonic often repeat their source's text.
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// One line for a failed connection to `url`: the error, its sources, and
/// a hint when a TLS mismatch is the likely cause.
pub fn explain_error(url: &str, e: &dyn std::error::Error) -> String {
    let text = error_chain(e);
    let hint = mismatch_hint(url, &text);
    format!("{text}{hint}")
}

/// Whether a failed call broke on the connection rather than being
/// answered by the server: tonic gives a status it makes from a transport
/// error that error as its source (a plain client on a TLS port gets
/// `Internal` "h2 protocol error" this way, or `Unavailable`, or
/// `Unknown`), while a status the server sent has none.
pub fn is_transport_failure(status: &tonic::Status) -> bool {
    use std::error::Error;
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown
    ) || status.source().is_some()
}

/// [`explain_error`] for a failed call: its message (not the status'
/// verbose `Display`), its sources, and the hint.
pub fn explain_status(url: &str, status: &tonic::Status) -> String {
    use std::error::Error;
    let text = chain(status.message().to_owned(), status.source());
    let hint = mismatch_hint(url, &text);
    format!("{text}{hint}")
}

/// A hint to add to a failed call's message when it looks like one side
/// talks TLS and the other does not, or the certificate does not fit;
/// empty when nothing suggests that. `error` is the whole error text
/// (its source chain included).
fn mismatch_hint(url: &str, error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if is_https(url) {
        if e.contains("corrupt message") || e.contains("invalidcontenttype") {
            " (the server does not speak TLS: is it started without --tls-cert? use http:// for a plain server)"
        } else if e.contains("unknownissuer") || e.contains("invalid peer certificate") {
            " (the server's certificate is not signed by the given CA, or does not name this host)"
        } else if e.contains("tls handshake") || e.contains("handshake") {
            " (the TLS handshake failed)"
        } else {
            ""
        }
    } else if e.contains("h2 protocol error")
        || e.contains("connection reset")
        || e.contains("broken pipe")
        || e.contains("connection closed")
        || e.contains("frame with invalid size")
        || e.contains("unexpected eof")
    {
        " (the server may require TLS: use an https:// URL and a CA, GRIDCC_TLS_CA or --tls-ca)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_decides_tls_and_mismatches_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        std::fs::write(&ca_path, ca.pem()).unwrap();
        let tls = ClientTls::load(&ca_path).unwrap();

        assert!(endpoint("http://127.0.0.1:1", None).is_ok());
        assert!(endpoint("https://127.0.0.1:1", Some(&tls)).is_ok());
        assert!(matches!(
            endpoint("https://127.0.0.1:1", None),
            Err(TlsError::NoCa { .. })
        ));
        assert!(matches!(
            endpoint("http://127.0.0.1:1", Some(&tls)),
            Err(TlsError::CaWithoutHttps { .. })
        ));
        assert!(matches!(
            endpoint("ftp://127.0.0.1:1", None),
            Err(TlsError::BadUrl { .. })
        ));
        assert_eq!(
            worker_url("HTTPS://coord:7700", "10.0.0.5:7701"),
            "https://10.0.0.5:7701"
        );
        assert_eq!(
            worker_url("http://coord:7700", "10.0.0.5:7701"),
            "http://10.0.0.5:7701"
        );
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let absent = dir.path().join("absent.pem");
        assert!(matches!(
            ClientTls::load(&junk),
            Err(TlsError::NotPem { .. })
        ));
        assert!(matches!(
            ClientTls::load(&absent),
            Err(TlsError::Read { .. })
        ));

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        assert!(ServerTls::load(&cert_path, &key_path).is_ok());
        assert!(matches!(
            ServerTls::load(&cert_path, &cert_path),
            Err(TlsError::NotPem { .. })
        ));
        let message = ServerTls::load(&junk, &key_path).unwrap_err().to_string();
        assert!(message.contains("junk.pem"), "{message}");
    }
}
