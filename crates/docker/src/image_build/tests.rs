use std::path::PathBuf;

use super::*;

#[test]
fn buildx_gets_the_users_config_plus_the_given_credentials() {
    use std::os::unix::fs::PermissionsExt;
    let user = tempfile::tempdir().unwrap();
    std::fs::create_dir(user.path().join("buildx")).unwrap();
    std::fs::write(
        user.path().join("config.json"),
        r#"{"auths":{"other.example":{"auth":"b3RoZXI6cHc="}},"credsStore":"desktop",
           "credHelpers":{"reg.example:5000":"ecr-login","gcr.io":"gcloud"},"proxies":{"default":{}}}"#,
    )
    .unwrap();
    let run = tempfile::tempdir().unwrap();
    let login = crate::auth::Credentials {
        username: "u".into(),
        password: crate::auth::Secret::new("s3cret"),
        server: "reg.example:5000".into(),
        source: crate::auth::CredentialSource::Stdin,
    };
    let dir = client_config(run.path(), Some(user.path()), &[login]).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("config.json")), 0o600);
    assert!(dir.join("buildx").is_dir(), "buildx's builders are kept");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["auths"]["reg.example:5000"]["auth"], "dTpzM2NyZXQ=");
    assert_eq!(v["auths"]["other.example"]["auth"], "b3RoZXI6cHc=");
    assert_eq!(v["credHelpers"], serde_json::json!({"gcr.io": "gcloud"}));
    assert!(v.get("credsStore").is_none());
    assert_eq!(v["proxies"], serde_json::json!({"default": {}}));
    // The user's own file is untouched.
    assert!(
        std::fs::read_to_string(user.path().join("config.json"))
            .unwrap()
            .contains("desktop")
    );
}

#[test]
fn secrets_parse_both_forms() {
    let s: SecretSpec = "id=ca,src=/etc/ssl/certs/ca-certificates.crt"
        .parse()
        .unwrap();
    assert_eq!(s.id, "ca");
    let s: SecretSpec = "ca=/x".parse().unwrap();
    assert_eq!(s.src, PathBuf::from("/x"));
    assert!("nonsense".parse::<SecretSpec>().is_err());
    assert!("id=,src=/x".parse::<SecretSpec>().is_err());
}

#[test]
fn auto_takes_the_engine_unless_buildx_is_needed() {
    let mut spec = BuildSpec {
        tags: vec!["latest".into()],
        ..BuildSpec::default()
    };
    assert_eq!(
        choose_backend(BackendChoice::Auto, &spec).unwrap(),
        Backend::Engine
    );
    spec.secrets.push("id=a,src=/b".parse().unwrap());
    let err = choose_backend(BackendChoice::Engine, &spec).unwrap_err();
    assert!(err.message.contains("build secrets") && err.message.contains("buildx"));
}

#[test]
fn buildx_arguments_carry_every_feature() {
    let spec = BuildSpec {
        context: "ctx".into(),
        dockerfile: "ctx/Dockerfile".into(),
        image: "r/app".into(),
        tags: vec!["latest".into(), "sha-abc1234".into()],
        cache_to: vec!["type=inline".into()],
        cache_from: vec!["type=registry,ref=r/app:latest".into()],
        secrets: vec!["id=ca,src=/ca.pem".parse().unwrap()],
        provenance: Some(false),
        ..BuildSpec::default()
    };
    let args = buildx_args(&spec, std::path::Path::new("/m.json")).join(" ");
    for want in [
        "--tag r/app:latest",
        "--tag r/app:sha-abc1234",
        "--cache-to type=inline",
        "--cache-from type=registry,ref=r/app:latest",
        "--secret id=ca,src=/ca.pem",
        "--provenance=false",
        "--load",
        "--metadata-file /m.json",
    ] {
        assert!(args.contains(want), "{want} not in {args}");
    }
    assert!(args.ends_with(" ctx"));
}

#[test]
fn buildkit_only_syntax_is_found() {
    assert_eq!(
        buildkit_syntax("FROM x\nRUN --mount=type=secret,id=ca true\n"),
        ["RUN --mount"]
    );
    assert_eq!(
        buildkit_syntax("FROM x\nRUN <<EOF\necho\nEOF\n"),
        ["heredocs"]
    );
    assert!(buildkit_syntax("FROM x\n# RUN --mount=type=cache\nRUN true\n").is_empty());
}

#[test]
fn no_space_is_recognised() {
    assert!(is_no_space("write /x: no space left on device"));
    assert!(!is_no_space("exit code 1"));
}

#[test]
fn every_cache_export_ignores_errors_unless_the_user_said() {
    assert_eq!(
        cache_export("type=gha,mode=max"),
        "type=gha,mode=max,ignore-error=true"
    );
    assert_eq!(
        cache_export("type=registry,ref=r/c:x,ignore-error=false"),
        "type=registry,ref=r/c:x,ignore-error=false"
    );
    assert_eq!(cache_export("type=inline"), "type=inline");
}

#[test]
fn the_output_route_decides_load_or_push() {
    let mut spec = BuildSpec {
        context: PathBuf::from("."),
        dockerfile: PathBuf::from("Dockerfile"),
        image: "r/app".into(),
        tags: vec!["latest".into()],
        cache_to: vec!["type=local,dest=/c".into()],
        ..BuildSpec::default()
    };
    let args = buildx_args(&spec, std::path::Path::new("/m.json"));
    assert!(args.contains(&"--load".to_string()));
    assert!(!args.contains(&"--push".to_string()));
    assert!(args.contains(&"type=local,dest=/c,ignore-error=true".to_string()));
    spec.output = Output::Push;
    let args = buildx_args(&spec, std::path::Path::new("/m.json"));
    assert!(args.contains(&"--push".to_string()));
    assert!(!args.contains(&"--load".to_string()));
}
