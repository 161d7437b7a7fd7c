use super::*;
use crate::digest::{sha256_of, sidecar_of};

const UNIT: &str = "openssl@3.0.13-1/x86_64/rpm";
const FILE: &str = "openssl-3.0.13-1.x86_64.rpm";

struct Fixture {
    _dir: tempfile::TempDir,
    repo: DirectoryRepo,
    unit: Unit,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = DirectoryRepo {
            root: dir.path().join("repo root"),
            file: FileTemplate::parse("{name}-{version}-{release}.{platform}.{package}").unwrap(),
            from: "testing".into(),
            to: "stable".into(),
        };
        Fixture { _dir: dir, repo, unit: Unit::from_key(UNIT).unwrap() }
    }

    fn path(&self, channel: &str) -> PathBuf {
        self.repo.root.join(channel).join(FILE)
    }

    fn put(&self, channel: &str, bytes: &[u8]) -> String {
        let path = self.path(channel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        sha256_of(bytes).unwrap()
    }

    /// Every file under the target channel, hidden ones too.
    fn stable_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.repo.root.join("stable"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn promotes_a_verified_copy_and_keeps_the_source() {
    let f = Fixture::new();
    let digest = f.put("testing", b"the rpm's bytes");
    let promoted = f.repo.promote(&f.unit).await.unwrap();
    assert!(!promoted.already);
    assert_eq!(promoted.sha256, digest);
    assert_eq!(promoted.name.as_deref(), Some(FILE));
    assert_eq!(fs::read(f.path("stable")).unwrap(), b"the rpm's bytes");
    assert!(f.path("testing").exists(), "promotion copies, it does not move");
    assert_eq!(f.stable_entries(), [FILE], "no temporary file is left behind");
    assert!(promoted.uri.starts_with("file:///"), "{}", promoted.uri);
    assert!(promoted.uri.ends_with(&format!("/repo%20root/stable/{FILE}")), "{}", promoted.uri);
}

#[tokio::test]
async fn promoting_again_is_idempotent() {
    let f = Fixture::new();
    let digest = f.put("testing", b"v1");
    assert!(!f.repo.promote(&f.unit).await.unwrap().already);
    let again = f.repo.promote(&f.unit).await.unwrap();
    assert!(again.already);
    assert_eq!(again.sha256, digest);
    assert_eq!(f.stable_entries(), [FILE]);
}

#[tokio::test]
async fn a_different_file_at_the_target_is_never_overwritten() {
    let f = Fixture::new();
    f.put("testing", b"new bytes");
    let old = f.put("stable", b"old bytes");
    let err = f.repo.promote(&f.unit).await.unwrap_err();
    assert!(matches!(&err, PromotionError::TargetDiffers { existing, .. } if *existing == old), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(fs::read(f.path("stable")).unwrap(), b"old bytes");
}

#[tokio::test]
async fn a_sidecar_that_disagrees_stops_the_promotion() {
    let f = Fixture::new();
    let digest = f.put("testing", b"bytes");
    fs::write(sidecar_of(&f.path("testing")), format!("{}  {FILE}\n", "a".repeat(64))).unwrap();
    let err = f.repo.promote(&f.unit).await.unwrap_err();
    assert!(matches!(err, PromotionError::SidecarMismatch { .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(!f.path("stable").exists());

    fs::write(sidecar_of(&f.path("testing")), format!("{digest} *{FILE}\n")).unwrap();
    assert_eq!(f.repo.promote(&f.unit).await.unwrap().sha256, digest);
}

#[tokio::test]
async fn a_missing_source_is_permanent_and_names_the_path() {
    let f = Fixture::new();
    let err = f.repo.promote(&f.unit).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains(&f.path("testing").display().to_string()), "{err}");
}

#[tokio::test]
async fn a_unit_whose_name_would_leave_the_channel_is_refused() {
    let f = Fixture::new();
    let arm = Unit::from_key("web@2.1-7/linux/arm64/oci").unwrap();
    let err = f.repo.promote(&arm).await.unwrap_err();
    assert!(matches!(err, PromotionError::BadEvent(_)), "{err}");
    assert!(!f.repo.root.join("testing").join("web-2.1-7.linux").exists());
}

#[tokio::test]
async fn withdrawing_moves_the_file_aside_and_deletes_nothing() {
    let f = Fixture::new();
    f.put("testing", b"bytes");
    f.repo.promote(&f.unit).await.unwrap();
    let withdrawn = f.repo.withdraw(&f.unit, "01EVENT").await.unwrap();
    let kept = f.repo.root.join(".withdrawn/stable").join(format!("{FILE}.01EVENT"));
    assert_eq!(withdrawn.moved_to.as_deref(), Some(kept.as_path()));
    assert!(!withdrawn.already);
    assert!(!f.path("stable").exists());
    assert_eq!(fs::read(&kept).unwrap(), b"bytes");
    assert!(f.path("testing").exists());

    let again = f.repo.withdraw(&f.unit, "01EVENT").await.unwrap();
    assert!(again.already);
    // A later promotion, then a redelivered old withdrawal: the new file stays.
    f.repo.promote(&f.unit).await.unwrap();
    assert!(f.repo.withdraw(&f.unit, "01EVENT").await.unwrap().already);
    assert!(f.path("stable").exists());
}

#[tokio::test]
async fn withdrawing_what_is_not_there_is_already_done() {
    let f = Fixture::new();
    let withdrawn = f.repo.withdraw(&f.unit, "01EVENT").await.unwrap();
    assert!(withdrawn.already);
    assert_eq!(withdrawn.moved_to, None);
    assert!(!f.repo.root.join(WITHDRAWN).exists());
}
