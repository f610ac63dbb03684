use base64::Engine as _;

use super::*;

const PASSWORD: &str = "hunter2-s3cr3t";

fn opts() -> ResolveOptions {
    ResolveOptions::default()
}

fn with_env(pairs: &[(&str, &str)]) -> ResolveOptions {
    ResolveOptions {
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..opts()
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A config dir with `config.json` holding `json`.
fn config_dir(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), json).unwrap();
    dir
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(PASSWORD), "secret leaked into: {text}");
    assert!(
        !text.contains(&b64(&format!("me:{PASSWORD}"))),
        "auth leaked: {text}"
    );
}

#[test]
fn registry_host_follows_docker_rules() {
    let cases = [
        ("ubuntu", "docker.io"),
        ("ubuntu:22.04", "docker.io"),
        ("library/ubuntu", "docker.io"),
        ("library/ubuntu:latest", "docker.io"),
        ("localhost/x", "localhost"),
        ("localhost:5000/x", "localhost:5000"),
        ("127.0.0.1:5000/ns/app", "127.0.0.1:5000"),
        ("ghcr.io/o/r:tag", "ghcr.io"),
        ("my.reg/x@sha256:0123456789abcdef", "my.reg"),
        ("ubuntu@sha256:0123456789abcdef", "docker.io"),
        ("docker.io/library/ubuntu", "docker.io"),
        ("index.docker.io/library/ubuntu", "docker.io"),
        ("registry-1.docker.io/x/y", "docker.io"),
        ("localhost:5000", "docker.io"), // no slash: a Hub name with tag "5000"
        ("Registry/x", "registry"),      // upper case marks a host
        ("[::1]:5000/x", "[::1]:5000"),
    ];
    for (image, want) in cases {
        assert_eq!(registry_host(image), want, "image {image}");
    }
}

#[test]
fn secret_and_credentials_never_show_the_password() {
    let creds = Credentials {
        username: "me".into(),
        password: Secret::new(PASSWORD),
        server: "ghcr.io".into(),
        source: CredentialSource::Stdin,
    };
    assert_no_secret(&format!("{creds:?}"));
    assert_no_secret(&format!("{creds:#?}"));
    assert_no_secret(&format!("{}", creds.password));
    assert!(format!("{creds:?}").contains("***"));
    assert_eq!(creds.password.expose(), PASSWORD);
    assert!(!creds.is_identity_token());
}

#[test]
fn resolve_options_debug_hides_secrets() {
    let mut o = with_env(&[("REGISTRY_PASSWORD", PASSWORD)]);
    o.password_stdin = Some(PASSWORD.into());
    let dbg = format!("{o:?}");
    assert_no_secret(&dbg);
    assert!(dbg.contains("REGISTRY_PASSWORD"), "{dbg}");
}

#[test]
fn host_may_be_given_as_an_address() {
    let o = with_env(&[("DOCKERHUB_USERNAME", "hub"), ("DOCKERHUB_TOKEN", "t")]);
    let c = resolve(DOCKER_HUB_SERVER, &o).unwrap().unwrap();
    assert_eq!(c.server, DOCKER_HUB_SERVER);
    let c = resolve("index.docker.io", &o).unwrap().unwrap();
    assert_eq!(c.username, "hub");
}

#[test]
fn stdin_wins_and_takes_username_from_flag_or_env() {
    let mut o = with_env(&[
        ("REGISTRY_USERNAME", "envuser"),
        ("REGISTRY_PASSWORD", "envpass"),
    ]);
    o.password_stdin = Some(format!("{PASSWORD}\r\n"));
    let c = resolve("ghcr.io", &o).unwrap().unwrap();
    assert_eq!(c.username, "envuser");
    assert_eq!(c.password.expose(), PASSWORD);
    assert_eq!(c.source, CredentialSource::Stdin);
    assert_eq!(c.server, "ghcr.io");

    o.username = Some("flaguser".into());
    let c = resolve("ghcr.io", &o).unwrap().unwrap();
    assert_eq!(c.username, "flaguser");

    // DOCKERHUB_USERNAME supplies the name only for Docker Hub.
    let mut o = with_env(&[("DOCKERHUB_USERNAME", "hubuser")]);
    o.password_stdin = Some(PASSWORD.into());
    let c = resolve("docker.io", &o).unwrap().unwrap();
    assert_eq!(c.username, "hubuser");
    assert_eq!(c.server, DOCKER_HUB_SERVER);
    let e = resolve("ghcr.io", &o).unwrap_err();
    assert!(matches!(e, AuthError::StdinWithoutUsername { .. }));
}

#[test]
fn stdin_without_username_names_what_is_missing() {
    let mut o = opts();
    o.password_stdin = Some(PASSWORD.into());
    let msg = resolve("docker.io", &o).unwrap_err().to_string();
    assert!(msg.contains("--username"), "{msg}");
    assert!(msg.contains("REGISTRY_USERNAME"), "{msg}");
    assert!(msg.contains("DOCKERHUB_USERNAME"), "{msg}");
    assert_no_secret(&msg);

    o.password_stdin = Some("\n".into());
    o.username = Some("me".into());
    assert!(matches!(
        resolve("docker.io", &o).unwrap_err(),
        AuthError::EmptyStdinPassword
    ));
}

#[test]
fn env_pairs_and_precedence() {
    let o = with_env(&[
        ("REGISTRY_USERNAME", "reg"),
        ("REGISTRY_PASSWORD", "regpass"),
        ("DOCKERHUB_USERNAME", "hub"),
        ("DOCKERHUB_TOKEN", "hubtoken"),
    ]);
    let c = resolve("docker.io", &o).unwrap().unwrap();
    assert_eq!(c.username, "reg");
    assert_eq!(
        c.source,
        CredentialSource::Env {
            user_var: "REGISTRY_USERNAME".into(),
            pass_var: "REGISTRY_PASSWORD".into()
        }
    );

    let o = with_env(&[
        ("DOCKERHUB_USERNAME", "hub"),
        ("DOCKERHUB_TOKEN", "hubtoken"),
    ]);
    let c = resolve("docker.io", &o).unwrap().unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.expose()),
        ("hub", "hubtoken")
    );
    assert_eq!(c.server, DOCKER_HUB_SERVER);
    // Hub credentials are never offered to another registry.
    assert_eq!(resolve("ghcr.io", &o).unwrap(), None);

    // Env beats config.json.
    let dir = config_dir(&format!(
        r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#,
        b64("cfg:cfgpass")
    ));
    let mut o = with_env(&[("REGISTRY_USERNAME", "reg"), ("REGISTRY_PASSWORD", "p")]);
    o.docker_config_dir = Some(dir.path().to_path_buf());
    assert_eq!(resolve("ghcr.io", &o).unwrap().unwrap().username, "reg");
    o.env.clear();
    assert_eq!(resolve("ghcr.io", &o).unwrap().unwrap().username, "cfg");
}

#[test]
fn half_set_pairs_are_errors_naming_both_variables() {
    for (set, missing) in [
        ("REGISTRY_USERNAME", "REGISTRY_PASSWORD"),
        ("REGISTRY_PASSWORD", "REGISTRY_USERNAME"),
        ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"),
        ("DOCKERHUB_TOKEN", "DOCKERHUB_USERNAME"),
    ] {
        // An empty value counts as unset.
        let o = with_env(&[(set, PASSWORD), (missing, "")]);
        let msg = resolve("docker.io", &o).unwrap_err().to_string();
        assert!(msg.contains(set) && msg.contains(missing), "{msg}");
        assert_no_secret(&msg);
    }
    // A half-set Hub pair does not matter for another registry.
    let o = with_env(&[("DOCKERHUB_USERNAME", "hub")]);
    assert_eq!(resolve("ghcr.io", &o).unwrap(), None);
}

#[test]
fn config_auths_forms_and_keys() {
    let cases: &[(&str, &str, &str)] = &[
        // (key in auths, host asked for, server reported)
        ("127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:5000"),
        ("https://127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:5000"),
        (
            "http://127.0.0.1:5000/v1/",
            "127.0.0.1:5000",
            "127.0.0.1:5000",
        ),
        ("https://ghcr.io/v1/", "ghcr.io", "ghcr.io"),
        (DOCKER_HUB_SERVER, "docker.io", DOCKER_HUB_SERVER),
        ("docker.io", "docker.io", DOCKER_HUB_SERVER),
        ("index.docker.io", "docker.io", DOCKER_HUB_SERVER),
    ];
    for (key, host, server) in cases {
        let dir = config_dir(&format!(
            r#"{{"auths":{{"other.io":{{"auth":"{}"}},"{key}":{{"auth":"{}"}}}}}}"#,
            b64("wrong:x"),
            b64(&format!("me:{PASSWORD}"))
        ));
        let o = ResolveOptions {
            docker_config_dir: Some(dir.path().to_path_buf()),
            ..opts()
        };
        let c = resolve(host, &o)
            .unwrap()
            .unwrap_or_else(|| panic!("{key}"));
        assert_eq!(c.username, "me", "{key}");
        assert_eq!(c.password.expose(), PASSWORD);
        assert_eq!(&c.server, server);
        assert_eq!(
            c.source,
            CredentialSource::ConfigAuths {
                path: dir.path().join("config.json")
            }
        );
        assert_eq!(resolve("nothere.io", &o).unwrap(), None);
    }

    // username/password fields; a password containing ':' in `auth`.
    let dir = config_dir(&format!(
        r#"{{"auths":{{"a.io":{{"username":"u","password":"{PASSWORD}"}},
            "b.io":{{"auth":"{}"}}, "c.io":{{}}}}}}"#,
        b64("me:pa:ss")
    ));
    let o = ResolveOptions {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..opts()
    };
    let a = resolve("a.io", &o).unwrap().unwrap();
    assert_eq!((a.username.as_str(), a.password.expose()), ("u", PASSWORD));
    let b = resolve("b.io", &o).unwrap().unwrap();
    assert_eq!((b.username.as_str(), b.password.expose()), ("me", "pa:ss"));
    assert_eq!(resolve("c.io", &o).unwrap(), None);
}

#[test]
fn config_dir_defaults_from_env() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".docker")).unwrap();
    std::fs::write(
        home.path().join(".docker/config.json"),
        format!(r#"{{"auths":{{"h.io":{{"auth":"{}"}}}}}}"#, b64("home:p")),
    )
    .unwrap();
    let other = config_dir(&format!(
        r#"{{"auths":{{"h.io":{{"auth":"{}"}}}}}}"#,
        b64("dc:p")
    ));
    let home_s = home.path().to_str().unwrap();
    let o = with_env(&[("HOME", home_s)]);
    assert_eq!(resolve("h.io", &o).unwrap().unwrap().username, "home");
    let o = with_env(&[
        ("HOME", home_s),
        ("DOCKER_CONFIG", other.path().to_str().unwrap()),
    ]);
    assert_eq!(resolve("h.io", &o).unwrap().unwrap().username, "dc");
    // No HOME, no DOCKER_CONFIG: nowhere to look.
    assert_eq!(resolve("h.io", &opts()).unwrap(), None);
}

#[test]
fn missing_or_empty_config_is_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let o = ResolveOptions {
        docker_config_dir: Some(dir.path().join("nope")),
        ..opts()
    };
    assert_eq!(resolve("ghcr.io", &o).unwrap(), None);
    let dir = config_dir("  \n");
    let o = ResolveOptions {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..opts()
    };
    assert_eq!(resolve("ghcr.io", &o).unwrap(), None);
}

#[test]
fn malformed_config_names_file_and_position() {
    let secret_auth = b64(&format!("me:{PASSWORD}"));
    let dir = config_dir(&format!(
        "{{\n  \"auths\": {{\"x\": {{\"auth\": \"{secret_auth}\",}}\n"
    ));
    let o = ResolveOptions {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..opts()
    };
    let e = resolve("x", &o).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("config.json"), "{msg}");
    assert!(
        matches!(e, AuthError::ConfigSyntax { line: 2, .. }),
        "{e:?}"
    );
    assert!(msg.contains("line 2 column"), "{msg}");
    assert_no_secret(&msg);
    assert_no_secret(&format!("{e:?}"));

    // Wrong types name the key but never quote the value.
    for json in [
        format!(r#"{{"auths":{{"x":{{"auth":["{secret_auth}"]}}}}}}"#),
        format!(r#"{{"auths":{{"x":"{secret_auth}"}}}}"#),
        format!(r#"{{"auths":["{secret_auth}"]}}"#),
        format!(r#"["{secret_auth}"]"#),
        r#"{"credsStore": 3}"#.to_string(),
    ] {
        let dir = config_dir(&json);
        let o = ResolveOptions {
            docker_config_dir: Some(dir.path().to_path_buf()),
            ..opts()
        };
        let e = resolve("x", &o).unwrap_err();
        assert!(matches!(e, AuthError::ConfigShape { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("config.json"), "{msg}");
        assert_no_secret(&msg);
        assert_no_secret(&format!("{e:?}"));
    }
}

#[test]
fn bad_auth_fields_are_errors_without_the_value() {
    let cases = [
        (format!("{PASSWORD}$$$"), "not valid base64"),
        (b64(PASSWORD), "username:password"),
        (
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x']),
            "UTF-8",
        ),
        (b64(&format!(":{PASSWORD}")), "empty username"),
    ];
    for (auth, want) in cases {
        let dir = config_dir(&format!(r#"{{"auths":{{"x.io":{{"auth":"{auth}"}}}}}}"#));
        let o = ResolveOptions {
            docker_config_dir: Some(dir.path().to_path_buf()),
            ..opts()
        };
        let e = resolve("x.io", &o).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want) && msg.contains("x.io"), "{msg}");
        assert!(!msg.contains(&auth), "{msg}");
        assert_no_secret(&msg);
        assert_no_secret(&format!("{e:?}"));
    }
}

/// Writes `docker-credential-<name>` into `dir`: a shell script that checks it was called
/// as `get`, records its stdin, and runs `body`.
#[cfg(unix)]
fn fake_helper(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(format!("docker-credential-{name}"));
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 9\nread -r server\n\
         printf '%s' \"$server\" > \"$(dirname \"$0\")/{name}.asked\"\n{body}\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
struct HelperEnv {
    bin: tempfile::TempDir,
    config: tempfile::TempDir,
}

#[cfg(unix)]
impl HelperEnv {
    fn new(config_json: &str) -> Self {
        Self {
            bin: tempfile::tempdir().unwrap(),
            config: config_dir(config_json),
        }
    }
    fn opts(&self) -> ResolveOptions {
        ResolveOptions {
            docker_config_dir: Some(self.config.path().to_path_buf()),
            // The helper scripts need sh, dirname and printf from the system PATH.
            path_env: Some(format!("{}:/usr/bin:/bin", self.bin.path().display())),
            ..opts()
        }
    }
    fn asked(&self, name: &str) -> String {
        std::fs::read_to_string(self.bin.path().join(format!("{name}.asked"))).unwrap()
    }
}

#[cfg(unix)]
#[test]
fn cred_helpers_entry_runs_that_helper() {
    let env = HelperEnv::new(
        r#"{"credHelpers":{"ghcr.io":"fake","docker.io":"hub"},"credsStore":"store",
            "auths":{"ghcr.io":{"auth":"bWU6eA=="}}}"#,
    );
    fake_helper(
        env.bin.path(),
        "fake",
        &format!(
            r#"printf '{{"ServerURL":"%s","Username":"helperuser","Secret":"{PASSWORD}"}}' "$server""#
        ),
    );
    fake_helper(
        env.bin.path(),
        "hub",
        r#"printf '{"Username":"<token>","Secret":"idtoken"}'"#,
    );
    let c = resolve("ghcr.io", &env.opts()).unwrap().unwrap();
    assert_eq!(c.username, "helperuser");
    assert_eq!(c.password.expose(), PASSWORD);
    assert_eq!(
        c.source,
        CredentialSource::CredHelper {
            helper: "fake".into()
        }
    );
    assert_eq!(env.asked("fake"), "ghcr.io");

    // Docker Hub: the helper is asked for the index server URL.
    let c = resolve("docker.io", &env.opts()).unwrap().unwrap();
    assert!(c.is_identity_token());
    assert_eq!(env.asked("hub"), DOCKER_HUB_SERVER);
    assert_eq!(c.server, DOCKER_HUB_SERVER);
}

#[cfg(unix)]
#[test]
fn creds_store_then_auths_fallback() {
    let env = HelperEnv::new(&format!(
        r#"{{"credsStore":"store","auths":{{"a.io":{{}},"b.io":{{"auth":"{}"}}}}}}"#,
        b64("fileuser:filepass")
    ));
    fake_helper(
        env.bin.path(),
        "store",
        r#"if [ "$server" = a.io ]; then
             printf '{"ServerURL":"a.io","Username":"storeuser","Secret":"storepass"}'
           else
             echo "credentials not found in native keychain"; exit 1
           fi"#,
    );
    let a = resolve("a.io", &env.opts()).unwrap().unwrap();
    assert_eq!(
        (a.username.as_str(), a.password.expose()),
        ("storeuser", "storepass")
    );
    assert_eq!(
        a.source,
        CredentialSource::CredsStore {
            helper: "store".into()
        }
    );
    // Not in the store: the auths entry with real credentials is used.
    let b = resolve("b.io", &env.opts()).unwrap().unwrap();
    assert_eq!(b.username, "fileuser");
    assert!(matches!(b.source, CredentialSource::ConfigAuths { .. }));
    // Nowhere: no credentials, not an error.
    assert_eq!(resolve("c.io", &env.opts()).unwrap(), None);
}

#[cfg(unix)]
#[test]
fn helper_failures_are_reported_without_output() {
    let env = HelperEnv::new(r#"{"credsStore":"broken"}"#);
    fake_helper(
        env.bin.path(),
        "broken",
        &format!(
            "echo '{{\"Secret\":\"{PASSWORD}\"}}'\n\
             echo 'keychain is locked' >&2\necho 'second line {PASSWORD}' >&2\nexit 3"
        ),
    );
    let e = resolve("x.io", &env.opts()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, AuthError::HelperFailed { .. }), "{e:?}");
    assert!(msg.contains("docker-credential-broken"), "{msg}");
    assert!(msg.contains("keychain is locked"), "{msg}");
    assert!(msg.contains('3'), "{msg}");
    assert_no_secret(&msg);
    assert_no_secret(&format!("{e:?}"));

    // Garbage on stdout with success.
    fake_helper(
        env.bin.path(),
        "broken",
        &format!("echo 'not json {PASSWORD}'"),
    );
    let e = resolve("x.io", &env.opts()).unwrap_err();
    assert!(matches!(e, AuthError::HelperOutput { .. }), "{e:?}");
    assert_no_secret(&e.to_string());
    assert_no_secret(&format!("{e:?}"));

    // The helper is not installed.
    let env = HelperEnv::new(r#"{"credsStore":"absent"}"#);
    let e = resolve("x.io", &env.opts()).unwrap_err();
    assert!(matches!(e, AuthError::HelperNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("docker-credential-absent"));
}

#[test]
fn source_display_is_readable() {
    let s = CredentialSource::Env {
        user_var: "REGISTRY_USERNAME".into(),
        pass_var: "REGISTRY_PASSWORD".into(),
    };
    assert_eq!(
        s.to_string(),
        "environment (REGISTRY_USERNAME/REGISTRY_PASSWORD)"
    );
    assert_eq!(
        CredentialSource::CredsStore {
            helper: "desktop".into()
        }
        .to_string(),
        "credsStore docker-credential-desktop"
    );
}
