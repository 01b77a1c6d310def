//! Group commit: callers hand one item each to a single writer task, which writes
//! whatever has accumulated in one store call (one transaction) and answers each caller
//! with its own result. Under load, a thousand writes cost a few commits instead of a
//! thousand (each an fsync on PostgreSQL, each a turn of the single writer on SQLite);
//! alone, an item is written at once. A caller still gets its answer only once its item
//! is committed. Used by the inbox (received activities) and by delivery (attempt
//! outcomes).

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot, watch};

/// What the writer does with one batch: the items, in arrival order, to one result per
/// item in the same order, or why the whole batch failed.
pub type WriteBatch<T, R> =
    Box<dyn FnMut(Vec<T>) -> Pin<Box<dyn Future<Output = Result<Vec<R>, String>> + Send>> + Send>;

/// The handle of a group commit's writer task. Cheap to clone.
pub struct GroupCommit<T, R> {
    tx: mpsc::Sender<(T, oneshot::Sender<Result<R, String>>)>,
}

impl<T, R> std::fmt::Debug for GroupCommit<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("queued", &(self.tx.max_capacity() - self.tx.capacity()))
            .finish()
    }
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

/// Why an item was not written.
#[derive(Debug)]
pub enum Refused<T> {
    /// The writer task has stopped: the item is handed back, not written.
    Stopped(T),
    /// The batch holding the item failed (the write's error).
    Failed(String),
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the writer task: batches of at most `max` items (the queue holds four
    /// batches; callers beyond wait to enqueue). It stops once every handle is dropped or, when given, `shutdown` fires,
    /// after writing what is queued.
    pub fn spawn(
        max: usize,
        shutdown: Option<watch::Receiver<bool>>,
        mut write: WriteBatch<T, R>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let max = max.max(1);
        let (tx, mut rx) = mpsc::channel::<(T, oneshot::Sender<Result<R, String>>)>(4 * max);
        let task = tokio::spawn(async move {
            let mut shutdown = shutdown;
            loop {
                let first = match &mut shutdown {
                    Some(signal) => tokio::select! {
                        item = rx.recv() => item,
                        _ = signal.changed() => {
                            rx.close();
                            rx.recv().await
                        }
                    },
                    None => rx.recv().await,
                };
                let Some(first) = first else { return };
                let mut batch = vec![first];
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                let n = items.len();
                match write(items).await {
                    Ok(results) if results.len() == n => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Ok(results) => {
                        let e =
                            format!("the store answered {} results for {n} items", results.len());
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        (Self { tx }, task)
    }

    /// Writes `item` with whatever else is queued, and returns its own result.
    ///
    /// # Errors
    /// [`Refused::Stopped`] with the item when the writer has stopped (the caller may write
    /// it itself); [`Refused::Failed`] when its batch failed.
    pub async fn submit(&self, item: T) -> Result<R, Refused<T>> {
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError((item, _))) = self.tx.send((item, reply)).await {
            return Err(Refused::Stopped(item));
        }
        match answer.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(Refused::Failed(e)),
            Err(_) => Err(Refused::Failed(
                "the writer stopped before answering".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Items queued while the writer is busy are written together, each caller gets its
    /// own result, a failed batch fails each of its callers, and an item handed to a
    /// stopped writer comes back.
    #[tokio::test]
    async fn batches_answer_each_caller() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (gate_tx, gate_rx) = watch::channel(false);
        let seen = sizes.clone();
        let write: WriteBatch<u32, u32> = Box::new(move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            let mut gate = gate_rx.clone();
            Box::pin(async move {
                // The first batch waits for the gate, so that the next items queue up.
                while !*gate.borrow() {
                    if gate.changed().await.is_err() {
                        break;
                    }
                }
                if items.contains(&13) {
                    return Err("thirteen".to_owned());
                }
                Ok(items.iter().map(|i| i * 10).collect())
            })
        });
        let (commit, task) = GroupCommit::spawn(8, None, write);
        let first = tokio::spawn({
            let c = commit.clone();
            async move { c.submit(1).await }
        });
        while sizes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (2..=5)
            .map(|i| {
                let c = commit.clone();
                tokio::spawn(async move { c.submit(i).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        gate_tx.send(true).unwrap();
        assert!(matches!(first.await.unwrap(), Ok(10)));
        for (i, r) in (2..=5).zip(rest) {
            assert_eq!(r.await.unwrap().ok(), Some(i * 10));
        }
        assert_eq!(*sizes.lock().unwrap(), [1, 4]);
        assert!(matches!(commit.submit(13).await, Err(Refused::Failed(e)) if e == "thirteen"));
        drop(commit);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_stopped_writer_hands_the_item_back() {
        let (stop_tx, stop_rx) = watch::channel(false);
        let write: WriteBatch<String, ()> =
            Box::new(|items: Vec<String>| Box::pin(async move { Ok(vec![(); items.len()]) }));
        let (commit, task) = GroupCommit::spawn(4, Some(stop_rx), write);
        assert!(commit.submit("a".to_owned()).await.is_ok());
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert!(
            matches!(commit.submit("b".to_owned()).await, Err(Refused::Stopped(s)) if s == "b")
        );
    }
}
