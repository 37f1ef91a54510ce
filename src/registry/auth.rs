//! Credentials stored by `podman login`, `skopeo login` and `docker login`:
//! the containers auth file (`$REGISTRY_AUTH_FILE`, else
//! `$XDG_RUNTIME_DIR/containers/auth.json` and
//! `$XDG_CONFIG_HOME/containers/auth.json`), then Docker's
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`). Each holds
//! `{"auths": {"HOST[/PATH]": {"auth": base64("USER:PASSWORD")}}}`; the
//! entry naming the longest part of `HOST/REPO` wins, as in podman.
//! Credential helpers (`credsStore`, `credHelpers`) are programs to run and
//! are not consulted.

use base64::Engine;
use std::path::{Path, PathBuf};

/// An auth file larger than this is not a login file.
const MAX_AUTH_FILE: u64 = 1 << 20;

/// The auth files read, in order: the first with an entry for the
/// registry answers.
fn auth_files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut files = Vec::new();
    match env("REGISTRY_AUTH_FILE") {
        Some(f) => files.push(f),
        None => {
            if let Some(r) = env("XDG_RUNTIME_DIR") {
                files.push(r.join("containers/auth.json"));
            }
            if let Some(c) =
                env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
            {
                files.push(c.join("containers/auth.json"));
            }
        }
    }
    match env("DOCKER_CONFIG") {
        Some(d) => files.push(d.join("config.json")),
        None => files.extend(home.map(|h| h.join(".docker/config.json"))),
    }
    files
}

/// The registry's names an auth file may use: Docker Hub's several.
fn host_aliases(host: &str) -> Vec<&str> {
    match host {
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => {
            vec!["docker.io", "index.docker.io", "registry-1.docker.io"]
        }
        h => vec![h],
    }
}

/// An auth file key without scheme or API suffix:
/// `https://index.docker.io/v1/` is `index.docker.io`.
fn normalized_key(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    k.strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k)
}

/// `USER:PASSWORD` for `host`'s repository `repo` from one auth file's
/// JSON: the entry whose key is the longest prefix of `HOST/REPO` (whole
/// path components), if it holds usable credentials.
pub(crate) fn lookup(json: &serde_json::Value, host: &str, repo: &str) -> Option<String> {
    let auths = json["auths"].as_object()?;
    let mut best: Option<(usize, &serde_json::Value)> = None;
    for (key, entry) in auths {
        let key = normalized_key(key);
        let matches = host_aliases(host).into_iter().any(|h| {
            key == h
                || key
                    .strip_prefix(h)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|path| {
                        repo == path || repo.strip_prefix(path).is_some_and(|r| r.starts_with('/'))
                    })
        });
        if matches && best.is_none_or(|(len, _)| key.len() > len) {
            best = Some((key.len(), entry));
        }
    }
    let auth = best?.1["auth"].as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.contains(':').then_some(text)
}

/// One auth file's JSON, if it is there; a file that cannot be read as
/// one is reported once and passed over.
fn read_auth_file(path: &Path) -> Option<serde_json::Value> {
    let meta = std::fs::metadata(path).ok()?;
    let shown = crate::error::shown_path(path);
    if meta.len() > MAX_AUTH_FILE {
        eprintln!("sqfuse: warning: {shown}: over 1 MiB, not read as a login file");
        return None;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "sqfuse: warning: cannot read {shown}: {}",
                crate::error::io_words(&e)
            );
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("sqfuse: warning: {shown}: not JSON ({e}), not read as a login file");
            None
        }
    }
}

/// The stored login for `host` (and `repo` on it), from the first auth
/// file that has one.
pub(crate) fn stored_login(host: &str, repo: &str) -> Option<String> {
    auth_files()
        .iter()
        .filter_map(|f| read_auth_file(f))
        .find_map(|json| lookup(&json, host, repo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn the_longest_matching_key_wins() {
        let json = serde_json::json!({"auths": {
            "reg.io": {"auth": b64("all:1")},
            "reg.io/team": {"auth": b64("team:2")},
            "reg.io/team/app": {"auth": b64("app:3")},
            "other.io": {"auth": b64("no:0")},
        }});
        assert_eq!(lookup(&json, "reg.io", "x/y").as_deref(), Some("all:1"));
        assert_eq!(lookup(&json, "reg.io", "team/z").as_deref(), Some("team:2"));
        assert_eq!(
            lookup(&json, "reg.io", "team/app").as_deref(),
            Some("app:3")
        );
        // Whole components only: "team" is no prefix of "teammate".
        assert_eq!(
            lookup(&json, "reg.io", "teammate/a").as_deref(),
            Some("all:1")
        );
        assert_eq!(lookup(&json, "third.io", "a"), None);
    }

    #[test]
    fn docker_hub_and_url_keys_are_recognised() {
        let json = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:pw")},
            "http://127.0.0.1:5000": {"auth": b64("local:pw")},
        }});
        assert_eq!(
            lookup(&json, "registry-1.docker.io", "library/alpine").as_deref(),
            Some("hub:pw")
        );
        assert_eq!(
            lookup(&json, "127.0.0.1:5000", "a").as_deref(),
            Some("local:pw")
        );
    }

    #[test]
    fn entries_without_usable_credentials_are_passed_over() {
        for entry in [
            serde_json::json!({}),
            serde_json::json!({"auth": "%%%"}),
            serde_json::json!({"auth": b64("no-colon")}),
            serde_json::json!({"auth": 5}),
        ] {
            let json = serde_json::json!({"auths": {"reg.io": entry}});
            assert_eq!(lookup(&json, "reg.io", "a"), None, "{json}");
        }
        assert_eq!(lookup(&serde_json::json!([1]), "reg.io", "a"), None);
    }
}
