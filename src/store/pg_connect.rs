//! Purpose: the one way boomerang connects to PostgreSQL (store threads, the worker lease, `migrate`, scratch
//! schemas, benches): `DATABASE_URL` parsed with its TLS settings, and a connection made with or without rustls.
//!
//! The URL's own `sslmode` and `sslrootcert` (libpq's names) are read here, since the client's parser rejects
//! `verify-ca` and `verify-full`, and `pool_size` (boomerang's, from `DATABASE_POOL_SIZE`) too; the rest goes to
//! the client. What each `sslmode` does:
//!
//! - `disable`: no TLS.
//! - `prefer` (the default when the URL says none, as in libpq): TLS when the server offers it, plain otherwise;
//!   the certificate is not checked (it guards against listening, not against an impostor).
//! - `require`: TLS, the certificate chain checked against the trusted roots and the host name checked, like
//!   `verify-full`. Stricter than libpq's `require`, which checks nothing: a safe default matters more here.
//! - `verify-ca`: TLS, the chain checked, the host name not.
//! - `verify-full`: TLS, the chain and the host name checked.
//!
//! Trusted roots: the webpki (Mozilla) roots, plus the certificates in `sslrootcert` (`DATABASE_CA_FILE`).

use super::StoreError;
use postgres::{Client, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, danger};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a connection attempt may take when `DATABASE_URL` does not say (`connect_timeout=`).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection threads of the store when `DATABASE_POOL_SIZE` (`pool_size=`) does not say.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// The connection threads a store may have (`DATABASE_POOL_SIZE`).
pub(super) const POOL_SIZES: std::ops::RangeInclusive<usize> = 1..=64;

/// Whether and how a connection uses TLS (`sslmode=`); see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when offered, unchecked.
    Prefer,
    /// TLS, chain and host name checked.
    Require,
    /// TLS, chain checked.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, StoreError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::Backend(format!(
                    "DATABASE_URL: sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A parsed `DATABASE_URL`: the client's settings, how to use TLS, and the store's pool size.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    mode: SslMode,
    /// The rustls settings (none with `sslmode=disable`), built once: reading the CA file fails early.
    tls: Option<Arc<rustls::ClientConfig>>,
    pool_size: usize,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (sslmode={})",
            describe_config(&self.config),
            self.mode.name()
        )
    }
}

impl PgTarget {
    /// Parses `url` (URL or `key=value` form), with a connect timeout and keepalives when it names none.
    pub fn parse(url: &str) -> Result<PgTarget, StoreError> {
        let (rest, ours) = split_params(url);
        let mut mode = SslMode::Prefer;
        let mut ca_file = None;
        let mut pool_size = DEFAULT_POOL_SIZE;
        for (key, value) in ours {
            match key.as_str() {
                "sslmode" => mode = SslMode::parse(&value)?,
                "sslrootcert" => ca_file = Some(PathBuf::from(value)),
                _ => pool_size = parse_pool_size(&value).map_err(StoreError::Backend)?,
            }
        }
        let mut config: postgres::Config = rest
            .parse()
            .map_err(|e| StoreError::Backend(format!("DATABASE_URL does not parse: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives_idle(Duration::from_secs(30));
        config.ssl_mode(match mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        let tls = match mode {
            SslMode::Disable => None,
            _ => Some(Arc::new(tls_config(mode, ca_file.as_deref())?)),
        };
        Ok(PgTarget {
            config,
            mode,
            tls,
            pool_size,
        })
    }

    /// The client's settings (host, user, database…).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// Connection threads the store runs.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// `postgres://user@host:port/db`, without the password.
    pub fn describe(&self) -> String {
        describe_config(&self.config)
    }

    /// Connects (on the calling thread, which must not be inside a tokio runtime).
    pub fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self
                .config
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(
                    (**tls).clone(),
                )),
        }
    }

    /// What to add to a failed connection's message so its reader knows what to change.
    pub fn hint(&self, e: &postgres::Error) -> Option<String> {
        let text = format!("{e} {}", super::postgres::message(e));
        if text.contains("no encryption") {
            return Some(format!(
                "the server accepts only TLS connections: use sslmode=verify-full (or require) in DATABASE_URL, not \
                 sslmode={}",
                self.mode.name()
            ));
        }
        if text.contains("certificate") {
            return Some(
                "the server's certificate was not accepted: set DATABASE_CA_FILE to the PEM file of the CA that \
                 signed it, check that it names the host in DATABASE_URL, or (to skip the check) use sslmode=prefer"
                    .into(),
            );
        }
        None
    }

    /// Whether `e` is TLS failing (refused certificate, no TLS on the server): waiting will not mend it.
    pub fn is_tls_failure(e: &postgres::Error) -> bool {
        let text = e.to_string();
        text.contains("TLS") || text.contains("tls")
    }
}

/// `DATABASE_POOL_SIZE`'s value, checked against [`POOL_SIZES`].
pub fn parse_pool_size(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if POOL_SIZES.contains(&n) => Ok(n),
        _ => Err(format!(
            "DATABASE_POOL_SIZE must be a whole number from {} to {}, not `{value}`",
            POOL_SIZES.start(),
            POOL_SIZES.end()
        )),
    }
}

/// `url` with boomerang's settings added as query parameters (for `DATABASE_CA_FILE` and `DATABASE_POOL_SIZE`);
/// a parameter the URL names already wins.
pub fn with_settings(url: &str, ca_file: Option<&Path>, pool_size: Option<usize>) -> String {
    let (_, ours) = split_params(url);
    let has = |k: &str| ours.iter().any(|(key, _)| key == k);
    let mut extra = Vec::new();
    if let Some(ca) = ca_file.filter(|_| !has("sslrootcert")) {
        extra.push(("sslrootcert", ca.display().to_string()));
    }
    if let Some(n) = pool_size.filter(|_| !has("pool_size")) {
        extra.push(("pool_size", n.to_string()));
    }
    if extra.is_empty() {
        return url.to_string();
    }
    if url.contains("://") {
        let mut out = url.to_string();
        for (k, v) in extra {
            out.push(if out.contains('?') { '&' } else { '?' });
            let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            out.push_str(&format!("{k}={v}"));
        }
        out
    } else {
        let mut out = url.to_string();
        for (k, v) in extra {
            out.push_str(&format!(" {k}={v}"));
        }
        out
    }
}

/// `url` without `sslmode`, `sslrootcert` and `pool_size`, and those three (key, value).
fn split_params(url: &str) -> (String, Vec<(String, String)>) {
    const OURS: [&str; 3] = ["sslmode", "sslrootcert", "pool_size"];
    let mut ours = Vec::new();
    if url.contains("://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), ours);
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            if OURS.contains(&key) {
                let value = pair.split_once('=').map_or("", |(_, v)| v);
                let value = url::form_urlencoded::parse(format!("v={value}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                ours.push((key.to_string(), value));
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, ours)
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some((k, v)) if OURS.contains(&k) => ours.push((k.to_string(), v.to_string())),
                _ => kept.push(word),
            }
        }
        (kept.join(" "), ours)
    }
}

/// `postgres://user@host:port/db` for `url` (without reading its CA file), if it parses.
pub(super) fn describe_url(url: &str) -> Option<String> {
    let (rest, _) = split_params(url);
    rest.parse::<postgres::Config>()
        .ok()
        .map(|c| describe_config(&c))
}

/// `postgres://user@host:port/db` for `config`, without the password.
fn describe_config(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// The rustls settings for `mode`, trusting the webpki roots and the certificates in `ca_file`.
fn tls_config(mode: SslMode, ca_file: Option<&Path>) -> Result<rustls::ClientConfig, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let fail = |why: String| {
            StoreError::Backend(format!("DATABASE_CA_FILE {}: {why}", path.display()))
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("holds no PEM certificate".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| fail(format!("a certificate is not usable: {e}")))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS: {e}")))?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| StoreError::Backend(format!("TLS: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Require | SslMode::VerifyFull | SslMode::Disable => webpki,
        SslMode::VerifyCa => Arc::new(ChainOnly { inner: webpki }),
        SslMode::Prefer => Arc::new(Unchecked { provider }),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `verify-ca`: the webpki check, a certificate for another name accepted.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer`: any certificate (encryption without proof of who answers), the handshake's signatures still checked.
#[derive(Debug)]
struct Unchecked {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sslmode parses (verify-* included, which the client's own parser refuses), a bad one is named, and
    /// the other parameters reach the client.
    #[test]
    fn sslmodes_parse_and_bad_ones_are_named() {
        for (url, mode) in [
            ("postgres://u@h/db", SslMode::Prefer),
            ("postgres://u@h/db?sslmode=disable", SslMode::Disable),
            (
                "postgres://u@h/db?sslmode=require&application_name=x",
                SslMode::Require,
            ),
            (
                "postgres://u@h/db?application_name=x&sslmode=verify-ca",
                SslMode::VerifyCa,
            ),
            ("host=h user=u sslmode=verify-full", SslMode::VerifyFull),
        ] {
            let target = PgTarget::parse(url).expect(url);
            assert_eq!(target.mode, mode, "{url}");
            assert_eq!(target.describe().split('@').next(), Some("postgres://u"));
        }
        let bad = PgTarget::parse("postgres://u@h/db?sslmode=sometimes")
            .expect_err("a bad mode")
            .to_string();
        assert!(bad.contains("sslmode=sometimes"), "{bad}");
    }

    /// `pool_size` (`DATABASE_POOL_SIZE`) defaults to 4, takes 1..=64 and refuses the rest with the range.
    #[test]
    fn pool_size_is_checked() {
        assert_eq!(
            PgTarget::parse("postgres://u@h/db")
                .expect("ok")
                .pool_size(),
            4
        );
        let url = with_settings("postgres://u@h/db", None, Some(9));
        assert_eq!(PgTarget::parse(&url).expect("ok").pool_size(), 9);
        for bad in ["0", "65", "many", "-1"] {
            let why = parse_pool_size(bad).expect_err(bad);
            assert!(why.contains("from 1 to 64"), "{why}");
        }
        assert_eq!(parse_pool_size("64"), Ok(64));
    }

    /// A CA file that is missing or holds no certificate is refused when the URL is parsed, naming the file.
    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        for path in [empty, dir.path().join("missing.pem")] {
            let url = with_settings("postgres://u@h/db?sslmode=verify-full", Some(&path), None);
            let why = PgTarget::parse(&url)
                .expect_err("a bad CA file")
                .to_string();
            assert!(why.contains("DATABASE_CA_FILE"), "{why}");
            assert!(why.contains(&path.display().to_string()), "{why}");
        }
    }
}
