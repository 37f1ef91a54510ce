//! The object store behind an image URL: `http(s)://` through object_store's
//! HTTP store, `s3://BUCKET/KEY` through its S3 store, configured the way
//! the AWS tools are (`AWS_*` variables, then the `~/.aws` profile), with
//! our timeouts, retry budget and extra trusted certificate.

use super::RemoteOptions;
use crate::error::{Error, Result};
use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a URL's object lives: the store and the object's path in it.
pub(super) struct Located {
    pub store: Arc<dyn ObjectStore>,
    pub path: ObjPath,
}

/// Builds the store for `url`, retrying failed requests (connection
/// refused, timeouts, 5xx, truncated bodies) with backoff for at most
/// `retry_for`.
pub(super) fn locate(url: &url::Url, opts: &RemoteOptions, retry_for: Duration) -> Result<Located> {
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 100, // bounded by time, not count
        retry_timeout: retry_for,
    };
    let client = client_options(opts)?;
    let built = match url.scheme() {
        "http" | "https" => {
            let mut base = url.clone();
            base.set_path("");
            base.set_query(None);
            base.set_fragment(None);
            let path = ObjPath::from_url_path(url.path()).map_err(|e| {
                Error::invalid(format!("{}: bad object path: {e}", super::shown_url(url)))
            })?;
            HttpBuilder::new()
                .with_url(base.as_str().trim_end_matches('/'))
                .with_client_options(client.with_allow_http(url.scheme() == "http"))
                .with_http_connector(super::capped::CappedConnector)
                .with_retry(retry)
                .build()
                .map(|s| Located {
                    store: Arc::new(s),
                    path,
                })
        }
        "s3" | "s3a" => {
            let bucket = url.host_str().unwrap_or_default();
            let key = url.path().trim_start_matches('/');
            if bucket.is_empty() || key.is_empty() {
                return Err(Error::invalid(format!(
                    "{}: an S3 URL is s3://BUCKET/KEY",
                    super::shown_url(url)
                )));
            }
            let path = ObjPath::from_url_path(key).map_err(|e| {
                Error::invalid(format!("{}: bad object key: {e}", super::shown_url(url)))
            })?;
            s3_builder(bucket, client)
                .with_http_connector(super::capped::CappedConnector)
                .with_retry(retry)
                .build()
                .map(|s| Located {
                    store: Arc::new(s),
                    path,
                })
        }
        other => {
            return Err(Error::invalid(format!(
                "{}: unsupported URL scheme {other:?} (http, https and s3 are)",
                super::shown_url(url)
            )))
        }
    };
    built.map_err(|e| {
        Error::invalid(format!(
            "{}: {}",
            super::shown_url(url),
            super::redact(&e.to_string())
        ))
    })
}

fn client_options(opts: &RemoteOptions) -> Result<ClientOptions> {
    let mut client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60))
        .with_user_agent(
            concat!("sqfuse/", env!("CARGO_PKG_VERSION"))
                .parse()
                .expect("a valid header value"),
        );
    if let Some(ca) = &opts.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| Error::io(format!("cannot read CA file {}", ca.display()), e))?;
        let certs = object_store::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::invalid(format!(
                "CA file {}: not PEM certificates: {e}",
                ca.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(Error::invalid(format!(
                "CA file {} holds no certificate",
                ca.display()
            )));
        }
        for c in certs {
            client = client.with_root_certificate(c);
        }
    }
    Ok(client)
}

/// S3 settings as the AWS CLI finds them: `AWS_*` variables first, then
/// the profile (`AWS_PROFILE`, else `default`) in `~/.aws/credentials` and
/// `~/.aws/config`. With no credentials anywhere, requests go unsigned
/// (public buckets) rather than waiting on an instance metadata service.
fn s3_builder(bucket: &str, client: ClientOptions) -> AmazonS3Builder {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let profile = AwsProfile::load(env("AWS_PROFILE").as_deref().unwrap_or("default"));
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let mut have_keys = env("AWS_ACCESS_KEY_ID").is_some();
    if !have_keys {
        if let (Some(id), Some(secret)) = (&profile.access_key_id, &profile.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = &profile.session_token {
                b = b.with_token(t);
            }
            have_keys = true;
        }
    }
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or(profile.region)
        .unwrap_or_else(|| "us-east-1".into());
    b = b.with_region(region);
    let endpoint = env("AWS_ENDPOINT_URL_S3")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| env("AWS_ENDPOINT"))
        .or(profile.endpoint_url);
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
        || env("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if let Some(e) = endpoint {
        b = b.with_endpoint(e);
    }
    let federated = env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
    if !have_keys && !federated {
        b = b.with_skip_signature(true);
    }
    b.with_client_options(client.with_allow_http(allow_http))
}

/// The settings sqfuse takes from one AWS profile.
#[derive(Default, Debug, PartialEq)]
pub(super) struct AwsProfile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

impl AwsProfile {
    fn load(name: &str) -> AwsProfile {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let file = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok());
        Self::parse(
            name,
            read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials")).as_deref(),
            read(file("AWS_CONFIG_FILE", "config")).as_deref(),
        )
    }

    /// `credentials` names sections `[NAME]`; `config` names them
    /// `[profile NAME]`, except `[default]`. Credentials win.
    pub(super) fn parse(name: &str, credentials: Option<&str>, config: Option<&str>) -> AwsProfile {
        let section = |text: Option<&str>, section: &str| -> Vec<(String, String)> {
            let Some(ini) = text.and_then(|t| ini::Ini::load_from_str(t).ok()) else {
                return Vec::new();
            };
            ini.section(Some(section))
                .map(|s| {
                    s.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let config_section = if name == "default" {
            "default".to_string()
        } else {
            format!("profile {name}")
        };
        let mut p = AwsProfile::default();
        let sources = [section(credentials, name), section(config, &config_section)];
        for (k, v) in sources.iter().flatten() {
            let slot = match k.as_str() {
                "aws_access_key_id" => &mut p.access_key_id,
                "aws_secret_access_key" => &mut p.secret_access_key,
                "aws_session_token" => &mut p.session_token,
                "region" => &mut p.region,
                "endpoint_url" => &mut p.endpoint_url,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.clone());
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::AwsProfile;

    #[test]
    fn profile_credentials_win_over_config() {
        let creds = "[default]\naws_access_key_id = A\naws_secret_access_key = S\n[work]\naws_access_key_id = W\naws_secret_access_key = WS\n";
        let config = "[default]\nregion = eu-west-1\n[profile work]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:9000\naws_access_key_id = ignored\n";
        let d = AwsProfile::parse("default", Some(creds), Some(config));
        assert_eq!(d.access_key_id.as_deref(), Some("A"));
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        assert_eq!(d.endpoint_url, None);
        let w = AwsProfile::parse("work", Some(creds), Some(config));
        assert_eq!(w.access_key_id.as_deref(), Some("W"));
        assert_eq!(w.secret_access_key.as_deref(), Some("WS"));
        assert_eq!(w.region.as_deref(), Some("us-west-2"));
        assert_eq!(w.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            AwsProfile::parse("none", Some(creds), None),
            AwsProfile::default()
        );
        assert_eq!(
            AwsProfile::parse("default", Some("[broken"), None),
            AwsProfile::default()
        );
    }
}
