//! The download path against a real HTTP server on 127.0.0.1 that the tests run themselves:
//! good files, wrong hashes, truncated bodies, dropped connections, server errors, retries, and
//! the cache that makes a second run download nothing.
#![cfg(feature = "download")]

mod common;

use model_zoo::Architecture;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::store::ModuleStore;
use model_zoo::registry::{Categories, Preprocess};
use model_zoo::{Checksum, WeightsInfo, WeightsSource};
use zoo_import::hub::{DownloadOptions, checksum_file, download, sha256_file};
use zoo_import::{DownloadError, HubError, WeightsCache, save_safetensors};

/// What the server does for a path, given how many requests for it came before.
#[derive(Clone)]
enum Reply {
    /// 200 with the whole body.
    Ok(Vec<u8>),
    /// An error status with a short body.
    Status(u16),
    /// Announces the full length, sends only the first `sent` bytes, closes.
    Truncated { body: Vec<u8>, sent: usize },
    /// Closes the connection without answering.
    Drop,
    /// Announces the full length, sends the first `sent` bytes, then nothing for `pause`
    /// (longer than the client's stall timeout) before closing.
    Stall {
        body: Vec<u8>,
        sent: usize,
        pause: Duration,
    },
    /// Announces `announced` bytes and sends the whole (longer) body.
    Overlong { body: Vec<u8>, announced: usize },
    /// A redirect to `location`.
    Redirect(String),
}

type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

/// A tiny HTTP/1.1 server on an ephemeral loopback port, counting requests per path.
struct Server {
    base: String,
    routes: Arc<Mutex<HashMap<String, Script>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Script>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, h) = (r.clone(), h.clone());
                std::thread::spawn(move || serve(stream, &r, &h));
            }
        });
        Self { base, routes, hits }
    }

    /// Serves `reply(n)` for the n-th request (from 0) of `/models/<file>`; returns its URL.
    fn route(&self, file: &str, reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> String {
        let path = format!("/models/{file}");
        self.routes
            .lock()
            .unwrap()
            .insert(path.clone(), Arc::new(reply));
        format!("{}{path}", self.base)
    }

    fn hits(&self, file: &str) -> usize {
        let hits = self.hits.lock().unwrap();
        hits.get(&format!("/models/{file}")).copied().unwrap_or(0)
    }

    fn models_url(&self) -> String {
        format!("{}/models/", self.base)
    }
}

fn serve(
    stream: TcpStream,
    routes: &Mutex<HashMap<String, Script>>,
    hits: &Mutex<HashMap<String, usize>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let n = {
        let mut hits = hits.lock().unwrap();
        let count = hits.entry(path.clone()).or_default();
        *count += 1;
        *count - 1
    };
    let script = routes.lock().unwrap().get(&path).cloned();
    let reply = script.map_or(Reply::Status(404), |s| s(n));
    let mut stream = stream;
    let head = |status: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let _ = match reply {
        Reply::Ok(body) => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|()| stream.write_all(&body)),
        Reply::Status(code) => {
            let body = b"nope";
            stream
                .write_all(head(&format!("{code} Error"), body.len()).as_bytes())
                .and_then(|()| stream.write_all(body))
        }
        Reply::Truncated { body, sent } => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|()| stream.write_all(&body[..sent])),
        Reply::Drop => Ok(()),
        Reply::Stall { body, sent, pause } => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|()| stream.write_all(&body[..sent]))
            .and_then(|()| stream.flush())
            .map(|()| std::thread::sleep(pause)),
        Reply::Overlong { body, announced } => stream
            .write_all(head("200 OK", announced).as_bytes())
            .and_then(|()| stream.write_all(&body)),
        Reply::Redirect(location) => stream.write_all(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
        ),
    };
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn quick() -> DownloadOptions {
    DownloadOptions {
        progress: false,
        attempts: 3,
        retry_delay: Duration::from_millis(10),
        stall_timeout: Duration::from_secs(5),
    }
}

/// A file named as torchvision names its files: `<stem>-<first 8 hex of its SHA-256>.<ext>`.
struct Named {
    bytes: Vec<u8>,
    file: String,
    prefix: String,
}

fn named(stem: &str, ext: &str, bytes: Vec<u8>) -> Named {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, &bytes).unwrap();
    let prefix = sha256_file(&path).unwrap()[..8].to_string();
    Named {
        file: format!("{stem}-{prefix}.{ext}"),
        bytes,
        prefix,
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every entry of `dir`, so a test can prove that nothing else (no `.part` file) is left.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn good_file_is_verified_cached_and_loads() {
    let server = Server::start();
    let tiny = named("tiny", "pth", std::fs::read(fixture("tiny.pth")).unwrap());
    let body = tiny.bytes.clone();
    let url = server.route(&tiny.file, move |_| Reply::Ok(body.clone()));
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join(&tiny.file);

    download(&url, &tiny.prefix, &dest, &quick()).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), tiny.bytes);
    assert_eq!(entries(cache.path()), std::slice::from_ref(&tiny.file));
    // The downloaded file is a real PyTorch state_dict.
    let mut store = burn::store::PytorchStore::from_file(&dest);
    let tensors = store.get_all_tensors().unwrap();
    assert!(
        tensors.keys().any(|k| k == "fc.weight"),
        "{:?}",
        tensors.keys()
    );
    assert_eq!(server.hits(&tiny.file), 1);
}

#[test]
fn wrong_hash_is_rejected_and_leaves_nothing() {
    let server = Server::start();
    let file = "resnet18-00000000.pth";
    let url = server.route(file, |_| Reply::Ok(b"not the published weights".to_vec()));
    let cache = tempfile::tempdir().unwrap();
    let err = download(&url, "00000000", &cache.path().join(file), &quick()).unwrap_err();
    assert!(matches!(err, DownloadError::Checksum { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&url) && message.contains("expected 00000000"),
        "{message}"
    );
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
    assert_eq!(server.hits(file), 1, "a checksum mismatch is not retried");
}

#[test]
fn truncated_body_is_retried_then_rejected_leaving_nothing() {
    let server = Server::start();
    let good = named("model", "pth", vec![7u8; 100_000]);
    let body = good.bytes.clone();
    let url = server.route(&good.file, move |_| Reply::Truncated {
        body: body.clone(),
        sent: 40_000,
    });
    let cache = tempfile::tempdir().unwrap();
    let err = download(&url, &good.prefix, &cache.path().join(&good.file), &quick()).unwrap_err();
    match &err {
        DownloadError::Truncated {
            expected, attempts, ..
        } => {
            assert_eq!((*expected, *attempts), (100_000, 3));
        }
        // Some platforms report a reset connection instead of a short read.
        DownloadError::Network { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("{other:?}"),
    }
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
    assert_eq!(server.hits(&good.file), 3);
}

#[test]
fn dropped_connection_then_success_is_retried() {
    let server = Server::start();
    let good = named("model", "pth", (0..50_000u32).map(|i| i as u8).collect());
    let body = good.bytes.clone();
    let url = server.route(&good.file, move |n| match n {
        0 => Reply::Drop,
        1 => Reply::Truncated {
            body: body.clone(),
            sent: 10,
        },
        _ => Reply::Ok(body.clone()),
    });
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join(&good.file);
    download(&url, &good.prefix, &dest, &quick()).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), good.bytes);
    assert_eq!(entries(cache.path()), std::slice::from_ref(&good.file));
    assert_eq!(server.hits(&good.file), 3);
}

#[test]
fn not_found_fails_at_once_with_the_status() {
    let server = Server::start();
    let url = format!("{}missing-12345678.pth", server.models_url());
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("missing-12345678.pth");
    let err = download(&url, "12345678", &dest, &quick()).unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::Status {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    assert!(entries(cache.path()).is_empty());
}

#[test]
fn server_error_is_retried_then_reported() {
    let server = Server::start();
    let url = server.route("flaky-12345678.pth", |_| Reply::Status(500));
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("flaky-12345678.pth");
    let err = download(&url, "12345678", &dest, &quick()).unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::Status {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(server.hits("flaky-12345678.pth"), 3);
    assert!(entries(cache.path()).is_empty());
}

#[test]
fn unreachable_host_names_the_url_and_suggests_from() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/models/resnet50-11ad3fa6.pth");
    let cache = tempfile::tempdir().unwrap();
    let options = DownloadOptions {
        attempts: 3,
        retry_delay: Duration::from_secs(2),
        ..quick()
    };
    let started = std::time::Instant::now();
    let err = download(
        &url,
        "11ad3fa6",
        &cache.path().join("resnet50-11ad3fa6.pth"),
        &options,
    )
    .unwrap_err();
    // No route: one attempt, at once (an offline machine), naming the URL, the file to fetch
    // by hand and how to convert it from disk.
    assert!(matches!(err, DownloadError::Unreachable { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(
        message.contains(&url)
            && message.contains("download resnet50-11ad3fa6.pth elsewhere")
            && message.contains("--from resnet50-11ad3fa6.pth"),
        "{message}"
    );
}

/// A server that stops sending mid-body: each attempt gives up after the stall timeout (not
/// the server's pause), the error says so, and the cache holds nothing.
#[test]
fn stalled_body_times_out_and_leaves_nothing() {
    let server = Server::start();
    let good = named("model", "pth", vec![3u8; 100_000]);
    let body = good.bytes.clone();
    let url = server.route(&good.file, move |_| Reply::Stall {
        body: body.clone(),
        sent: 30_000,
        pause: Duration::from_secs(20),
    });
    let cache = tempfile::tempdir().unwrap();
    let options = DownloadOptions {
        attempts: 2,
        stall_timeout: Duration::from_millis(500),
        ..quick()
    };
    let start = std::time::Instant::now();
    let err = download(&url, &good.prefix, &cache.path().join(&good.file), &options).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    match &err {
        DownloadError::Stalled {
            received, attempts, ..
        } => assert_eq!((*received, *attempts), (30_000, 2)),
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&url) && message.contains("no data for 0.5 s"),
        "{message}"
    );
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
    assert_eq!(server.hits(&good.file), 2);
}

/// A body longer than its Content-Length: what the header announced is read, its digest is
/// not the file's, and nothing is cached.
#[test]
fn body_longer_than_announced_is_rejected_leaving_nothing() {
    let server = Server::start();
    let good = named(
        "model",
        "pth",
        (0..60_000u32).map(|i| (i % 253) as u8).collect(),
    );
    let body = good.bytes.clone();
    let url = server.route(&good.file, move |_| Reply::Overlong {
        body: body.clone(),
        announced: 50_000,
    });
    let cache = tempfile::tempdir().unwrap();
    let err = download(&url, &good.prefix, &cache.path().join(&good.file), &quick()).unwrap_err();
    assert!(matches!(err, DownloadError::Checksum { .. }), "{err:?}");
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
}

/// A redirect loop ends in an error naming the URL, with nothing cached.
#[test]
fn redirect_loop_is_an_error_leaving_nothing() {
    let server = Server::start();
    let url = server.models_url() + "loop-12345678.pth";
    let target = url.clone();
    server.route("loop-12345678.pth", move |_| {
        Reply::Redirect(target.clone())
    });
    let cache = tempfile::tempdir().unwrap();
    let options = DownloadOptions {
        attempts: 1,
        ..quick()
    };
    let err = download(
        &url,
        "12345678",
        &cache.path().join("loop-12345678.pth"),
        &options,
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.to_lowercase().contains("redirect"), "{message}");
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
}

/// The whole path a user takes: a registry model, weights described like torchvision's, served
/// by the local server: download, verify, convert to burnpack, load, and equal outputs. A second
/// load from a fresh cache handle makes no request.
#[test]
fn pretrained_weights_download_convert_and_reload_from_cache() {
    let device = model_zoo::available_backends()[0].device().unwrap();
    let info = model_zoo::model_info("resnet18").unwrap();
    let (original, file) = resnet18_file(&device);

    let server = Server::start();
    let body = file.bytes.clone();
    server.route(&file.file, move |_| Reply::Ok(body.clone()));
    let weights = descriptor(&file);
    let root = tempfile::tempdir().unwrap();
    let cache = WeightsCache::new(root.path())
        .with_base_url(server.models_url())
        .with_progress(false)
        .with_retries(1, Duration::ZERO);
    assert!(cache.url(&weights).starts_with(&server.base));

    let loaded = cache.load_weights(info, &weights, &device).unwrap();
    assert_eq!(server.hits(&file.file), 1);
    assert!(cache.published_path(&weights).is_file());
    assert!(cache.burnpack_path("resnet18", &weights).is_file());

    let x = burn::tensor::Tensor::<4>::random(
        [1, 3, 64, 64],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let expected = original.forward(x.clone()).into_data();
    loaded
        .forward(x.clone())
        .into_data()
        .assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::absolute(1e-5));

    // A new handle on the same cache: no request, same weights.
    let again = WeightsCache::new(root.path())
        .with_base_url(server.models_url())
        .with_progress(false)
        .load_weights(info, &weights, &device)
        .unwrap();
    assert_eq!(
        server.hits(&file.file),
        1,
        "a cached file is not downloaded again"
    );
    again
        .forward(x.clone())
        .into_data()
        .assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::absolute(1e-5));

    // As a backbone from the cached classifier's Burn file: the head's tensors are left out,
    // the maps are the classifier's.
    let backbone = WeightsCache::new(root.path())
        .with_base_url(server.models_url())
        .with_progress(false)
        .load_features_weights(info, &weights, &[2, 4], &device)
        .unwrap();
    assert_eq!(server.hits(&file.file), 1);
    assert!(!backbone.model().has_head());
    let want = original.forward_intermediates(x.clone(), &[2, 4]).unwrap();
    for (got, want) in backbone.forward(x).into_iter().zip(want) {
        got.into_data()
            .assert_approx_eq::<f32>(&want.into_data(), burn::tensor::Tolerance::absolute(1e-5));
    }
}

/// The zoo model's weights as `paddle.save` writes a paddle.vision ResNet: BatchNorm
/// statistics `_mean`/`_variance`, the Linear weight `[in, out]`.
fn as_paddle_file(model: &model_zoo::Model) -> Vec<u8> {
    use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
    let arrays: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| {
            let name = t
                .name
                .replace("running_mean", "_mean")
                .replace("running_var", "_variance");
            let shape = t.shape.to_vec();
            let data = burn::store::bridge::to_data(&t).unwrap();
            let values = data.try_to_vec::<f32>().unwrap();
            if shape.len() == 2 {
                let (rows, cols) = (shape[0], shape[1]);
                let mut transposed = vec![0f32; values.len()];
                for r in 0..rows {
                    for c in 0..cols {
                        transposed[c * rows + r] = values[r * cols + c];
                    }
                }
                let bytes = transposed.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name, vec![cols, rows], bytes)
            } else {
                (
                    name,
                    shape,
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            }
        })
        .collect();
    common::pickle_of(&arrays)
}

/// Paddle's published files are verified by MD5: a resnet18 `.pdparams` served locally under a
/// descriptor like the registry's `PADDLE_IMAGENET` downloads, converts and gives the zoo model's
/// outputs; the same file under a wrong MD5 is refused and nothing is cached.
#[test]
fn paddle_weights_are_verified_by_md5_and_load() {
    let device = model_zoo::available_backends()[0].device().unwrap();
    let info = model_zoo::model_info("resnet18").unwrap();
    let original = info.create(1000, &device).unwrap();
    let bytes = as_paddle_file(&original);
    let exported = tempfile::tempdir().unwrap();
    let path = exported.path().join("resnet18.pdparams");
    std::fs::write(&path, &bytes).unwrap();
    let md5: &'static str = Box::leak(checksum_file(&path, Checksum::Md5("")).unwrap().into());

    let server = Server::start();
    let body = bytes.clone();
    server.route("resnet18.pdparams", move |_| Reply::Ok(body.clone()));
    let paddle = |checksum| WeightsInfo {
        name: "PADDLE_IMAGENET",
        source: WeightsSource::PaddleVision,
        url: "https://paddle-hapi.bj.bcebos.com/models/resnet18.pdparams",
        checksum,
        file_size_mb: 0.0,
        categories: Categories::ImageNet1K,
        preprocess: Preprocess::default(),
        acc1: None,
        acc5: None,
        is_default: false,
    };
    let root = tempfile::tempdir().unwrap();
    let cache = WeightsCache::new(root.path())
        .with_base_url(server.models_url())
        .with_progress(false)
        .with_retries(1, Duration::ZERO);

    let wrong = paddle(Checksum::Md5("0123456789abcdef0123456789abcdef"));
    let err = cache.load_weights(info, &wrong, &device).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("MD5") && message.contains(md5),
        "{message}"
    );
    assert!(!cache.published_path(&wrong).exists());

    let weights = paddle(Checksum::Md5(md5));
    let loaded = cache.load_weights(info, &weights, &device).unwrap();
    assert!(
        cache
            .published_path(&weights)
            .ends_with("paddle/resnet18.pdparams")
    );
    assert!(cache.burnpack_path("resnet18", &weights).is_file());
    assert_same_logits(&loaded, &original, &device);
}

/// A registry name that the cache cannot fetch gets the download error, naming the URL.
#[test]
fn registry_weights_from_an_unreachable_mirror_fail_clearly() {
    let device = model_zoo::available_backends()[0].device().unwrap();
    let server = Server::start();
    let root = tempfile::tempdir().unwrap();
    let cache = WeightsCache::new(root.path())
        .with_base_url(server.models_url())
        .with_progress(false)
        .with_retries(1, Duration::ZERO);
    let err = cache.load("resnet50", "DEFAULT", &device).unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Download(DownloadError::Status { status: 404, .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("resnet50-11ad3fa6.pth"), "{err}");
    let err = cache.load("resnet50", "IMAGENET22K", &device).unwrap_err();
    assert!(
        err.to_string().contains("IMAGENET1K_V1, IMAGENET1K_V2"),
        "{err}"
    );
    assert!(entries(&root.path().join("torch")).is_empty());
}

/// A descriptor for `file` (named as torchvision names its files) with its SHA-256 prefix.
fn descriptor(file: &Named) -> WeightsInfo {
    let url: &'static str = Box::leak(format!("https://example.invalid/{}", file.file).into());
    let prefix: &'static str = Box::leak(file.prefix.clone().into());
    WeightsInfo {
        name: "TEST_V1",
        url,
        source: WeightsSource::Torchvision,
        checksum: Checksum::Sha256Prefix(prefix),
        file_size_mb: 0.0,
        categories: Categories::ImageNet1K,
        preprocess: Preprocess::default(),
        acc1: None,
        acc5: None,
        is_default: true,
    }
}

/// A cache whose downloads go to a port nothing listens on: any download attempt fails.
fn offline_cache(root: &Path, hub: &Path) -> WeightsCache {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    WeightsCache::new(root)
        .with_base_url(format!("http://127.0.0.1:{port}/models"))
        .with_torch_hub(Some(hub.to_path_buf()))
        .with_progress(false)
        .with_retries(1, Duration::ZERO)
}

/// A file PyTorch already downloaded (`$TORCH_HOME/hub/checkpoints/<file>`) is verified, used
/// where it is and converted, with no network; one of the same name and other content is
/// refused, naming both digests, and nothing is cached.
#[test]
fn pytorchs_hub_cache_is_used_offline_and_verified() {
    let device = model_zoo::available_backends()[0].device().unwrap();
    let info = model_zoo::model_info("resnet18").unwrap();
    let (original, file) = resnet18_file(&device);
    let weights = descriptor(&file);

    let hub = tempfile::tempdir().unwrap();
    std::fs::write(hub.path().join(&file.file), &file.bytes).unwrap();
    let root = tempfile::tempdir().unwrap();
    let cache = offline_cache(root.path(), hub.path());
    assert_eq!(cache.fetch(&weights).unwrap(), hub.path().join(&file.file));
    let loaded = cache.load_weights(info, &weights, &device).unwrap();
    assert!(
        !cache.published_path(&weights).exists(),
        "the hub's file is used where it is, not copied"
    );
    assert!(cache.burnpack_path("resnet18", &weights).is_file());
    assert_same_logits(&loaded, &original, &device);

    // The same name, other content: refused with both digests, nothing cached.
    let other_hub = tempfile::tempdir().unwrap();
    let mut bytes = file.bytes.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(other_hub.path().join(&file.file), &bytes).unwrap();
    let found = sha256_file(&other_hub.path().join(&file.file)).unwrap();
    let root = tempfile::tempdir().unwrap();
    let err = offline_cache(root.path(), other_hub.path())
        .load_weights(info, &weights, &device)
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, HubError::Download(DownloadError::HubChecksum { .. })),
        "{err:?}"
    );
    assert!(
        message.contains(&file.prefix) && message.contains(&found),
        "{message}"
    );
    assert!(
        entries(root.path()).is_empty(),
        "{:?}",
        entries(root.path())
    );
}

/// `a` and `b` give the same logits (1e-5) on one random image.
fn assert_same_logits(a: &model_zoo::Model, b: &model_zoo::Model, device: &burn::tensor::Device) {
    let x = burn::tensor::Tensor::<4>::random(
        [1, 3, 32, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    );
    a.forward(x.clone()).into_data().assert_approx_eq::<f32>(
        &b.forward(x).into_data(),
        burn::tensor::Tolerance::absolute(1e-5),
    );
}

/// A fresh resnet18 and its weights as a safetensors file named as torchvision names its files.
fn resnet18_file(device: &burn::tensor::Device) -> (model_zoo::Model, Named) {
    let original = model_zoo::create("resnet18", 1000, device).unwrap();
    let exported = tempfile::tempdir().unwrap();
    let path = exported.path().join("resnet18.safetensors");
    save_safetensors(&original, &path).unwrap();
    let file = named("resnet18", "safetensors", std::fs::read(&path).unwrap());
    (original, file)
}

/// A segmentation model's published file, as a user gets it: downloaded from the (local)
/// server, verified, converted, loaded with its aux head, and reloaded from the cache without
/// a request; the same file into a model of another class count, partially (the classifiers
/// left as initialised), and into one without the aux head, strictly (its keys ignored).
#[test]
fn segmentation_weights_download_convert_and_load() {
    use model_zoo::segmentation::{self, SegmentationConfig, SegmentationWeights};
    use zoo_import::TorchImport;

    let device = model_zoo::available_backends()[0].device().unwrap();
    let info = segmentation::model_info("lraspp_mobilenet_v3_large").unwrap();
    let original = info.create_for_weights(21, &device).unwrap();
    let exported = tempfile::tempdir().unwrap();
    let path = exported.path().join("lraspp.safetensors");
    save_safetensors(&original, &path).unwrap();
    let file = named(
        "lraspp_mobilenet_v3_large",
        "safetensors",
        std::fs::read(&path).unwrap(),
    );

    let server = Server::start();
    let body = file.bytes.clone();
    server.route(&file.file, move |_| Reply::Ok(body.clone()));
    let weights = SegmentationWeights {
        name: "TEST_V1",
        url: Box::leak(format!("https://example.invalid/{}", file.file).into()),
        checksum: Checksum::Sha256Prefix(Box::leak(file.prefix.clone().into())),
        ..info.weights[0].clone()
    };
    let root = tempfile::tempdir().unwrap();
    let cache = || {
        WeightsCache::new(root.path())
            .with_base_url(server.models_url())
            .with_progress(false)
            .with_retries(1, Duration::ZERO)
    };
    let loaded = cache()
        .load_segmentation_weights(info, &weights, &device)
        .unwrap();
    assert_eq!(server.hits(&file.file), 1);
    assert!(cache().burnpack_path(info.name, &weights).is_file());
    let x = burn::tensor::Tensor::<4>::random(
        [1, 3, 48, 40],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let expected = original.forward(x.clone()).into_data();
    let again = cache()
        .load_segmentation_weights(info, &weights, &device)
        .unwrap();
    assert_eq!(
        server.hits(&file.file),
        1,
        "a cached file is not downloaded again"
    );
    for model in [loaded, again] {
        model
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::absolute(1e-5));
    }

    // Another class count: strict refuses, partial leaves both classifiers as initialised.
    let four = SegmentationConfig::new(info.arch)
        .with_num_classes(4)
        .init(&device)
        .unwrap();
    let err = TorchImport::new(&path).load_into(four.clone()).unwrap_err();
    assert!(
        err.to_string().contains("classifier.low_classifier.weight"),
        "{err}"
    );
    let (four, report) = TorchImport::new(&path)
        .partial(true)
        .load_into(four)
        .unwrap();
    assert_eq!(report.skipped.len(), 4, "{:?}", report.skipped);
    assert_eq!(four.forward(x).dims(), [1, 4, 48, 40]);

    // DeepLabV3's file holds the aux head; the model built without it ignores those keys.
    let deeplab = segmentation::model_info("deeplabv3_mobilenet_v3_large").unwrap();
    let with_aux = deeplab.create_for_weights(21, &device).unwrap();
    let aux_path = exported.path().join("deeplab.safetensors");
    save_safetensors(&with_aux, &aux_path).unwrap();
    let plain = segmentation::create(deeplab.name, 21, &device).unwrap();
    let (_, report) = TorchImport::new(&aux_path).load_into(plain).unwrap();
    // conv, BatchNorm's four, conv and bias (the zoo's files hold no `num_batches_tracked`).
    assert_eq!(report.ignored, 7, "aux_classifier's 7 tensors");
}
