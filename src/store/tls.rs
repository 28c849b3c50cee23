//! TLS to PostgreSQL, configured as libpq is configured: `sslmode` and `sslrootcert` in the
//! store URL.
//!
//! tokio-postgres knows `sslmode` `disable`, `prefer` and `require` only, verifies nothing
//! itself, and refuses parameters it does not know (`sslrootcert`). So both parameters are
//! taken out of the URL here, the rest is left to tokio-postgres's parser byte for byte, and the
//! rustls client configuration is built to libpq's meaning of the mode. The one connector made
//! here serves the pool and the change listener alike, on the binary's one TLS stack (rustls,
//! with ring, the provider the rest of the process uses).

use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values this store speaks (`allow`, clear text first, is not one: the
/// driver cannot fall back that way).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Mode, String> {
        Ok(match value {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(format!(
                    "invalid sslmode {other:?}: use disable, prefer, require, verify-ca or \
                     verify-full"
                ));
            }
        })
    }

    /// What tokio-postgres is told: whether to ask for TLS, and whether to go on without it.
    fn driver(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// Parses a `postgres://` store URL into the driver's configuration and the TLS connector its
/// `sslmode` and `sslrootcert` call for (`sslmode` defaults to `prefer`, as in libpq).
pub(super) fn configure(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), String> {
    let (rest, mode, rootcert) = split(url)?;
    let mut config = rest
        .parse::<tokio_postgres::Config>()
        .map_err(|e| e.to_string())?;
    config.ssl_mode(mode.driver());
    Ok((config, connector(mode, rootcert.as_deref())?))
}

/// The URL without `sslmode` and `sslrootcert`, and their values (the last of each, as libpq
/// takes). The query is split where tokio-postgres splits it (the first `?` after the
/// credentials), and every other parameter is kept exactly as written; a general URL parser
/// would refuse the multi-host URLs (`host1:5432,host2:5432`) the driver accepts.
fn split(url: &str) -> Result<(String, Mode, Option<String>), String> {
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(start) = url[after_credentials..]
        .find('?')
        .map(|q| after_credentials + q)
    else {
        return Ok((url.to_string(), Mode::Prefer, None));
    };
    let (mut mode, mut rootcert) = (Mode::Prefer, None);
    let mut kept = Vec::new();
    for pair in url[start + 1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = |name: &str, s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|e| format!("invalid {name} in the store URL: {e}"))
        };
        match decoded("parameter name", key)?.as_str() {
            "sslmode" => mode = Mode::parse(&decoded("sslmode", value)?)?,
            "sslrootcert" => rootcert = Some(decoded("sslrootcert", value)?),
            _ => kept.push(pair),
        }
    }
    let mut rest = url[..start].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, mode, rootcert))
}

/// The rustls connector for `mode`: `prefer` and `require` encrypt without checking the
/// certificate unless `sslrootcert` names a CA (then they check the chain, as libpq does),
/// `verify-ca` checks the chain and `verify-full` the chain and the host name, against
/// `sslrootcert` or, without it, the system's CA certificates. `disable` never uses it.
fn connector(mode: Mode, rootcert: Option<&str>) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = |roots: RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| format!("cannot verify with the CA certificates: {e}"))
    };
    let lenient = |chain| -> Arc<dyn ServerCertVerifier> {
        Arc::new(Lenient {
            chain,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let verifier = match (mode, rootcert) {
        (Mode::Disable, _) | (Mode::Prefer | Mode::Require, None) => lenient(None),
        (Mode::Prefer | Mode::Require | Mode::VerifyCa, _) => {
            lenient(Some(chain(roots(rootcert)?)?))
        }
        (Mode::VerifyFull, _) => chain(roots(rootcert)?)?,
    };
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // What libpq sends, and what PostgreSQL 17 requires of a direct TLS connection
    // (`sslnegotiation=direct`).
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

/// The CA certificates of `sslrootcert` (a PEM bundle), or the system's without it.
fn roots(rootcert: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let Some(path) = rootcert else {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            return Err(format!(
                "the sslmode verifies the server's certificate, but no system CA certificate was \
                 found ({} errors): name a PEM CA bundle with sslrootcert=FILE",
                found.errors.len()
            ));
        }
        return Ok(roots);
    };
    let unreadable = |e: &dyn std::fmt::Display| format!("cannot read sslrootcert {path}: {e}");
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        let cert = cert.map_err(|e| unreadable(&e))?;
        roots.add(cert).map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"no PEM certificate in it"));
    }
    Ok(roots)
}

/// The verifier of `prefer`, `require` and `verify-ca`: without `chain`, any certificate (the
/// connection is encrypted, the server not authenticated); with it, a certificate the CA signed,
/// whatever name it is for. The handshake's signatures are checked either way, so the server
/// holds the key of the certificate it shows.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // The name is checked after the chain: its mismatch means the chain held.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::{Mode, split};

    #[test]
    fn the_tls_parameters_are_taken_out_and_the_rest_kept_as_written() {
        let (rest, mode, rootcert) = split(
            "postgres://u:p%3Fw@h1:5432,h2:5433/db?options=-c%20a%3Db&sslmode=require\
             &sslrootcert=%2Fetc%2Fca+1.pem&application_name=x+y&sslmode=verify-ca",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%3Fw@h1:5432,h2:5433/db?options=-c%20a%3Db&application_name=x+y"
        );
        assert_eq!(mode, Mode::VerifyCa);
        assert_eq!(rootcert.as_deref(), Some("/etc/ca+1.pem"));
    }

    #[test]
    fn without_sslmode_the_mode_is_prefer_and_the_url_unchanged() {
        for url in [
            "postgres://u@h/db",
            "postgres://u:a?b@h/db",
            "postgres://u@h/db?x=1",
        ] {
            let (rest, mode, rootcert) = split(url).unwrap();
            assert_eq!((rest.as_str(), mode, rootcert), (url, Mode::Prefer, None));
        }
        let (rest, _, _) = split("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(rest, "postgres://u@h/db");
    }

    #[test]
    fn an_unknown_sslmode_is_refused_by_name() {
        let e = split("postgres://u:secret@h/db?sslmode=allow").unwrap_err();
        assert!(e.contains("invalid sslmode \"allow\""), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }
}
