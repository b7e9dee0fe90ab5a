//! `max_rejects` (docs/contract.md section 3, "Rejects"): bad records set aside before the
//! passes read the upload ([`set_aside`]), stored with the version ([`store_rejects`]).

use super::Plan;
use super::passes::sniff_spooled;
use crate::spool::{self, Spooled};
use crate::upload::{self, Destination};
use crate::{AppState, IngestError};
use lakehouse_api::{DatasetName, ObjectKey, RejectsRef};
use lakehouse_client::trace::bind;
use lakehouse_convert::{Detected, ReadConfig};
use std::time::Duration;

/// Records set aside by [`set_aside`], waiting to be stored with the version.
pub(super) struct PendingRejects {
    /// The rejects CSV (`line,column,reason,record`), a spool file.
    pub(super) file: spool::SpoolFile,
    /// Records in it.
    pub(super) count: u64,
    /// Header renames of the upload.
    pub(super) warnings: Vec<String>,
    /// The upload's compression and encoding (the clean file is plain UTF-8).
    pub(super) detected: Detected,
    /// The delimiter it was read with (the option, or the one sniffed).
    pub(super) delimiter: u8,
}

/// `max_rejects` (docs/contract.md section 3, "Rejects"): one read of the spooled upload that
/// copies its good records to a clean spool file and its bad ones, up to `max_rejects`, to
/// a rejects spool file (`lakehouse_convert::set_aside`). When there were bad records, the
/// clean file is what the passes read and the rejects are stored with the version; when
/// there were none, the upload itself is read, exactly as without the option.
///
/// # Errors
/// [`IngestError::Convert`] (`TooManyRejects` past the limit, and the errors no record can
/// be set aside for), [`IngestError::Spool`], [`IngestError::Task`].
pub(super) async fn set_aside(
    state: &AppState,
    plan: &Plan,
    upload: Spooled,
) -> Result<(Spooled, Option<PendingRejects>), IngestError> {
    let dir = state.config().spool_dir.clone();
    let mut options = plan.options.clone();
    let limits = plan.limits;
    let registered = plan.current.as_ref().map(|m| m.schema.clone());
    let max_rejects = plan.max_rejects;
    let max_csv_bytes = plan.max_csv_bytes;
    let sniff = plan.sniff;
    let path = upload.file.path().to_owned();
    let direct = upload.direct;
    let (clean, rejects, outcome, clean_bytes, read_as) =
        tokio::task::spawn_blocking(bind(move || {
            // Sniffed and decoded as the passes would; the clean file is plain UTF-8 text.
            if sniff {
                options.delimiter = sniff_spooled(&path, &options, limits, max_csv_bytes)?;
            }
            let input = spool::open_read(&path, direct, options.encoding, max_csv_bytes)?;
            let read_as = (input.detected(), options.delimiter);
            let clean = spool::new_file(&dir, ".clean.csv")?;
            let rejects = spool::new_file(&dir, ".rejects.csv")?;
            let outcome = lakehouse_convert::set_aside(
                input,
                ReadConfig::new(&options, limits).sniffed(sniff),
                registered.as_ref(),
                max_rejects,
                std::io::BufWriter::new(clean.as_file()),
                std::io::BufWriter::new(rejects.as_file()),
            )?;
            let clean_bytes = clean
                .as_file()
                .metadata()
                .map_err(IngestError::Spool)?
                .len();
            Ok::<_, IngestError>((clean, rejects, outcome, clean_bytes, read_as))
        }))
        .await
        .map_err(IngestError::Task)??;
    let (clean, rejects) = (spool::SpoolFile::new(clean), spool::SpoolFile::new(rejects));
    if outcome.rejected == 0 {
        return Ok((upload, None));
    }
    let clean = Spooled {
        file: clean,
        size_bytes: clean_bytes,
        sha256: upload.sha256.clone(),
        hash_time: Duration::ZERO,
        // Written through the page cache (`BufWriter`), which holds it.
        direct: false,
    };
    let pending = PendingRejects {
        file: rejects,
        count: outcome.rejected,
        warnings: outcome.warnings,
        detected: read_as.0,
        delimiter: read_as.1,
    };
    Ok((clean, Some(pending)))
}

/// Stores the rejects CSV content-addressed at `datasets/<name>/_rejects/<sha256>.csv` (or,
/// for a dry run, only hashes it) once the version's Parquet is stored, and checks what
/// storaged answered, as for the Parquet.
///
/// # Errors
/// [`IngestError::Upstream`], [`IngestError::StoredObject`], [`IngestError::Spool`],
/// [`IngestError::Task`].
pub(super) async fn store_rejects(
    state: &AppState,
    name: &DatasetName,
    destination: &Destination,
    pending: PendingRejects,
) -> Result<RejectsRef, IngestError> {
    let (mut out, rejects_upload) = upload::start(
        destination,
        ObjectKey::rejects_dir(name),
        upload::REJECTS_SUFFIX,
        &tokio::runtime::Handle::current(),
        state.inner.storaged_idle(),
    );
    let path = pending.file.path().to_owned();
    let sent = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path)?;
        let sent = std::io::copy(&mut file, &mut out)?;
        std::io::Write::flush(&mut out)?;
        Ok::<u64, std::io::Error>(sent)
    })
    .await
    .map_err(IngestError::Task)?;
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) => {
            return Err(rejects_upload
                .abort()
                .await
                .unwrap_or(IngestError::Spool(e)));
        }
    };
    let (stored, _created) = rejects_upload.commit().await?;
    let key = ObjectKey::rejects_object(name, &stored.sha256);
    if stored.key != key || stored.size != sent {
        return Err(IngestError::StoredObject {
            expected_key: key.to_string(),
            stored_key: stored.key.to_string(),
            sent_bytes: sent,
            stored_bytes: stored.size,
        });
    }
    Ok(RejectsRef {
        key,
        count: pending.count,
        size: stored.size,
        sha256: stored.sha256,
    })
}
