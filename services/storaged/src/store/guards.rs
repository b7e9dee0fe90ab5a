//! Guards that undo a write that did not complete: a staging object deleted, a multipart
//! upload aborted, on error paths (awaited) and when the request is cancelled (spawned from
//! `Drop`).

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use std::sync::Arc;

/// Deletes a staging object on every path that does not move it into place: awaited on the
/// error paths ([`StagingGuard::discard`]), spawned from `Drop` when the request is cancelled
/// (client gone) mid-upload.
pub(super) struct StagingGuard {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) path: Option<Path>,
}

impl StagingGuard {
    pub(super) async fn discard(mut self) {
        if let Some(path) = self.path.take() {
            delete_quietly(&*self.store, &path).await;
        }
    }

    pub(super) fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let store = Arc::clone(&self.store);
            runtime.spawn(async move { delete_quietly(&*store, &path).await });
        }
    }
}

/// A multipart upload in flight (staging, or an S3 PUT of a large body): aborted on every path that does not
/// complete it, awaited on the error paths, spawned from `Drop` when the request is cancelled.
pub(super) struct UploadGuard(pub(super) Option<WriteMultipart>);

impl UploadGuard {
    pub(super) fn writer(&mut self) -> &mut WriteMultipart {
        self.0
            .as_mut()
            .expect("upload is in flight until finished or aborted")
    }

    pub(super) async fn abort(&mut self) {
        if let Some(writer) = self.0.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(error = %e, "could not abort a multipart upload");
        }
    }

    /// Completes the upload; a failure to complete aborts it.
    pub(super) async fn finish(&mut self) -> object_store::Result<()> {
        let Some(writer) = self.0.take() else {
            return Ok(());
        };
        // `finish` waits for the parts in flight, uploads the last one and completes; when
        // any of that fails it aborts the upload itself.
        writer.finish().await.map(|_| ())
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, "could not abort a cancelled multipart upload");
                }
            });
        }
    }
}

async fn delete_quietly(store: &dyn ObjectStore, path: &Path) {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!(path = %path, error = %e, "could not delete staging object"),
    }
}
