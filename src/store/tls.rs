//! TLS to the shared store's PostgreSQL, over the rustls quench already
//! builds for every other connection.
//!
//! The URL takes libpq's options, so the URL a managed database's console
//! gives works as is: `sslmode` (`disable`, `prefer`, `require`,
//! `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file of the CAs to
//! trust, or `system`). tokio-postgres knows only the first three modes
//! and not `sslrootcert`, so both are taken out here before it reads the
//! URL.
//!
//! Unlike libpq, quench never talks TLS to a server it has not verified:
//! whenever TLS is used (offered by the server under `prefer`, the
//! default, or required), the certificate must chain to a trusted CA and
//! name the host. The store holds customer data and the fencing that
//! keeps two leaders apart; an unverified session protects neither from
//! whoever sits in between. `require` and `verify-ca` therefore act as
//! `verify-full`. `disable` is the way to go without TLS.
//!
//! Written here rather than taken from `tokio-postgres-rustls`: that crate
//! adds `x509-cert` (with `der`, `spki` and a second `const-oid`) only to
//! read the signature algorithm for SCRAM channel binding, and this
//! adapter is the 60 lines below. Without channel binding, SCRAM-SHA-256
//! still proves the password both ways, and the verified certificate
//! stands against a man in the middle; `channel_binding=require` in the
//! URL is refused by tokio-postgres with its own clear error.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::shared::SharedError;

/// Which CAs a server's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The operating system's trust store.
    System,
    /// Only the CAs in this PEM file (`sslrootcert=PATH`), as libpq does.
    File(PathBuf),
}

/// A store URL split into what tokio-postgres reads and what TLS needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The URL without `sslrootcert`, its `sslmode` one tokio-postgres knows.
    pub url: String,
    pub mode: SslMode,
    pub roots: Roots,
}

/// Takes libpq's TLS options out of `url` (a `postgres://` URL, or the
/// `key=value` form, whose values here must not be quoted).
pub fn split(url: &str) -> Result<Url, SharedError> {
    let mut mode = SslMode::Prefer;
    let mut roots = Roots::System;
    let mut take = |key: &str, value: &str| -> Result<bool, SharedError> {
        match key {
            "sslmode" => {
                mode = match value {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" | "verify-ca" | "verify-full" => SslMode::Require,
                    other => return Err(SharedError::Url(format!(
                        "the store's URL has sslmode={other}; use disable, prefer, require, verify-ca or verify-full (quench verifies the server's certificate and name whenever it uses TLS)"
                    ))),
                };
                Ok(true)
            }
            "sslrootcert" => {
                roots = match value {
                    "system" => Roots::System,
                    "" => return Err(SharedError::Url(
                        "the store's URL has an empty sslrootcert; name a PEM file of the CAs to trust, or `system`".into(),
                    )),
                    path => Roots::File(path.into()),
                };
                Ok(true)
            }
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                Err(SharedError::Url(format!(
                    "the store's URL has {key}, but quench does not present client certificates yet; authenticate with a password (SCRAM) over verified TLS instead"
                )))
            }
            _ => Ok(false),
        }
    };
    let rest = if let Some((head, query)) = url
        .split_once('?')
        .filter(|(h, _)| h.starts_with("postgres://") || h.starts_with("postgresql://"))
    {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
            SharedError::Url(
                "the store's URL has a query string that is not key=value&key=value".into(),
            )
        })?;
        let mut kept = Vec::new();
        for (k, v) in pairs {
            if !take(&k, &v)? {
                kept.push((k, v));
            }
        }
        kept.push(("sslmode".into(), mode_name(mode).into()));
        let query = serde_urlencoded::to_string(&kept).expect("pairs of strings encode");
        format!("{head}?{query}")
    } else if url.contains("://") {
        format!("{url}?sslmode={}", mode_name(mode))
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some((k, v)) if take(k, v)? => {}
                _ => kept.push(word.to_string()),
            }
        }
        kept.push(format!("sslmode={}", mode_name(mode)));
        kept.join(" ")
    };
    Ok(Url {
        url: rest,
        mode,
        roots,
    })
}

fn mode_name(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Require => "require",
        _ => "prefer",
    }
}

/// A connector for `roots`; `place` names the store in errors.
pub fn connector(roots: &Roots, place: &str) -> Result<Rustls, SharedError> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Roots::System => {
            // A machine without a trust store still connects where the
            // server offers no TLS; where it does, the handshake says why.
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
        Roots::File(path) => {
            let unusable = |why: String| {
                SharedError::Url(format!(
                    "the store's URL names sslrootcert {}, which cannot be used: {why}; name a PEM file of the CAs that sign {place}'s certificate",
                    path.display()
                ))
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| unusable(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unusable(e.to_string()))?;
            if certs.is_empty() {
                return Err(unusable("it holds no certificate".into()));
            }
            for cert in certs {
                store.add(cert).map_err(|e| unusable(e.to_string()))?;
            }
        }
    }
    // Its own provider, so the store connects whether or not the process
    // installed a default one.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SharedError::Connect {
        place: place.to_string(),
        why: e.to_string(),
    })?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(Rustls(Arc::new(config)))
}

/// tokio-postgres's `MakeTlsConnect` over tokio-rustls.
#[derive(Clone)]
pub struct Rustls(Arc<rustls::ClientConfig>);

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> MakeTlsConnect<S> for Rustls {
    type Stream = Stream<S>;
    type TlsConnect = Handshake;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Handshake, Self::Error> {
        Ok(Handshake {
            config: self.0.clone(),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

pub struct Handshake {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

type Pending<S> = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsConnect<S> for Handshake {
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pending<S>;

    fn connect(self, stream: S) -> Pending<S> {
        Box::pin(async move {
            let name = self.name.clone();
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(Stream)
                .map_err(|e| {
                    let why = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(rustls::Error::InvalidCertificate(c)) => c.to_string(),
                        _ => return e,
                    };
                    io::Error::new(
                        e.kind(),
                        Untrusted {
                            name: name.to_str().into_owned(),
                            why,
                        },
                    )
                })
        })
    }
}

/// The server's certificate failed verification: a setting to fix, not
/// an outage to wait out.
#[derive(Debug, thiserror::Error)]
#[error("its certificate is not trusted for {name} ({why}); give the CA that signs it with sslrootcert=PATH in the URL (a PEM file), connect by the name the certificate carries, or go without TLS with sslmode=disable")]
pub struct Untrusted {
    name: String,
    why: String,
}

/// `e`'s cause, when it is a certificate that failed verification.
pub fn untrusted<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Untrusted> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(u) = e.downcast_ref::<Untrusted>() {
            return Some(u);
        }
        if let Some(u) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<Untrusted>())
        {
            return Some(u);
        }
        next = e.source();
    }
    None
}

/// A TLS session with the database.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_options_are_taken_out_of_the_url() {
        let u = split("postgres://q:pw@db.example:5432/quench?sslmode=verify-full&sslrootcert=/etc/ca%20dir/rds.pem&application_name=quench").unwrap();
        assert_eq!(u.mode, SslMode::Require);
        assert_eq!(u.roots, Roots::File("/etc/ca dir/rds.pem".into()));
        assert_eq!(
            u.url,
            "postgres://q:pw@db.example:5432/quench?application_name=quench&sslmode=require"
        );
        let parsed: tokio_postgres::Config = u.url.parse().unwrap();
        assert_eq!(parsed.get_ssl_mode(), SslMode::Require);

        let u = split("postgres://q@localhost/quench").unwrap();
        assert_eq!((u.mode, u.roots), (SslMode::Prefer, Roots::System));
        assert_eq!(u.url, "postgres://q@localhost/quench?sslmode=prefer");

        let u = split("host=db user=q sslmode=disable sslrootcert=system").unwrap();
        assert_eq!((u.mode, u.roots), (SslMode::Disable, Roots::System));
        assert_eq!(u.url, "host=db user=q sslmode=disable");
        assert!(u.url.parse::<tokio_postgres::Config>().is_ok());
    }

    #[test]
    fn a_mode_libpq_does_not_have_is_refused_with_the_ones_it_does() {
        let e = split("postgres://q:secret@db/quench?sslmode=verify").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("sslmode=verify;"), "{text}");
        assert!(text.contains("verify-full"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(split("postgres://q@db/quench?sslrootcert=").is_err());
        let e = split("postgres://q@db/quench?sslcert=/c.pem").unwrap_err();
        assert!(e.to_string().contains("client certificates"), "{e}");
    }
}
