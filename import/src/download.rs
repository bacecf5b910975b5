//! The network half of [`crate::hub`] (the `download` feature): an HTTP GET streamed into a
//! temporary file beside its destination while hashing, with retries, a stall timeout, a
//! progress bar, and no retry when there is no route (an offline machine).

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::hub::{DownloadError, DownloadOptions, Expected, io_error};

pub(crate) fn download_checked(
    url: &str,
    expected: Expected<'_>,
    dest: &Path,
    options: &DownloadOptions,
) -> Result<(), DownloadError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(options.stall_timeout))
        .timeout_per_read(Some(options.stall_timeout))
        .build()
        .into();
    let attempts = options.attempts.max(1);
    let mut delay = options.retry_delay;
    let mut attempt = 1;
    loop {
        match download_once(&agent, url, expected, dest, options) {
            Ok(()) => return Ok(()),
            Err(mut err) => {
                err.set_attempts(attempt);
                if attempt >= attempts || !err.is_transient() {
                    return Err(err);
                }
                if options.progress {
                    eprintln!(
                        "download failed: {}; retrying in {delay:?} (attempt {} of {attempts})",
                        err.summary(),
                        attempt + 1
                    );
                }
                std::thread::sleep(delay);
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

fn download_once(
    agent: &ureq::Agent,
    url: &str,
    expected_digest: Expected<'_>,
    dest: &Path,
    options: &DownloadOptions,
) -> Result<(), DownloadError> {
    let progress = options.progress;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let network = |err: &dyn std::fmt::Display| DownloadError::Network {
        url: url.to_string(),
        attempts: 1,
        message: err.to_string(),
    };
    let mut response = match agent.get(url).call() {
        Ok(response) => response,
        Err(ureq::Error::StatusCode(status)) => {
            return Err(DownloadError::Status {
                url: url.to_string(),
                status,
                attempts: 1,
            });
        }
        Err(err) if no_route(&err) => {
            return Err(DownloadError::Unreachable {
                url: url.to_string(),
                file: url.rsplit('/').next().unwrap_or(url).to_string(),
                message: err.to_string(),
            });
        }
        Err(err) => return Err(network(&err)),
    };
    let expected_len = response.body().content_length();
    // Removed on drop, so every early return below leaves nothing behind.
    let part = tempfile::Builder::new()
        .prefix(".download-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(io_error(dir))?;
    let bar = progress_bar(progress, expected_len, dest);
    let mut hasher = expected_digest.hasher();
    let mut received: u64 = 0;
    {
        let mut writer = BufWriter::new(part.as_file());
        let mut reader = response.body_mut().as_reader();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    bar.abandon();
                    // A body cut short shows up as an error from the reader when the length
                    // was announced.
                    return Err(match expected_len {
                        _ if is_timeout(&err) => DownloadError::Stalled {
                            url: url.to_string(),
                            seconds: options.stall_timeout.as_secs_f64(),
                            received,
                            attempts: 1,
                        },
                        Some(expected) if received < expected => DownloadError::Truncated {
                            url: url.to_string(),
                            expected,
                            received,
                            attempts: 1,
                        },
                        _ => network(&err),
                    });
                }
            };
            hasher.update(&buffer[..n]);
            writer
                .write_all(&buffer[..n])
                .map_err(io_error(part.path()))?;
            received += n as u64;
            bar.set_position(received);
        }
        writer.flush().map_err(io_error(part.path()))?;
    }
    bar.finish_and_clear();
    if let Some(expected) = expected_len.filter(|&e| e != received) {
        return Err(DownloadError::Truncated {
            url: url.to_string(),
            expected,
            received,
            attempts: 1,
        });
    }
    let digest = hasher.hex();
    if !digest.starts_with(&expected_digest.hex()) {
        return Err(DownloadError::Checksum {
            url: url.to_string(),
            algorithm: expected_digest.algorithm(),
            expected: expected_digest.hex(),
            found: digest,
        });
    }
    part.as_file().sync_all().map_err(io_error(part.path()))?;
    part.persist(dest).map_err(|err| DownloadError::Io {
        path: dest.to_path_buf(),
        source: err.error,
    })?;
    Ok(())
}

/// Whether a request failed for want of a route to the server (the name does not resolve, the
/// connection is refused or unreachable): an offline machine, which a retry does not help.
fn no_route(err: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match err {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => {
            matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::AddrNotAvailable
            )
            // A name that does not resolve: ureq's resolver passes on std's `to_socket_addrs`
            // error, whose kind is not stable (`Uncategorized`) but whose message is
            // getaddrinfo's, prefixed by std.
            || io.to_string().starts_with("failed to lookup address information")
        }
        _ => false,
    }
}

/// Whether a read failed because the server sent nothing for the stall timeout (ureq's
/// per-read timeout, as an I/O error or wrapping its own).
fn is_timeout(err: &std::io::Error) -> bool {
    if matches!(
        err.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    ) {
        return true;
    }
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|e| matches!(e, ureq::Error::Timeout(_)))
}

fn progress_bar(show: bool, len: Option<u64>, dest: &Path) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match len {
        Some(len) => {
            let bar = ProgressBar::new(len);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.with_message(name)
        }
        None => ProgressBar::new_spinner().with_message(name),
    }
}
