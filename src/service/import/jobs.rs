//! Imports from the admin page run on an import thread, not in the request: the upload returns
//! at once to a page that shows progress while the file is read and compared, keeps the preview
//! for its commit, and shows progress again while the commit writes. One import thread, since
//! the data file has one writer anyway.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::file::ImportFile;
use super::mapping::ChosenMap;
use super::plan::{
    commit_to, plan_with_map, refused_record, ImportError, ImportKind, Plan, Progress, Upload,
};
use super::table::XlsxLimits;
use crate::error::AppError;
use crate::grades::Term;
use crate::service::notices::Wake;
use crate::service::verify::VerifyKey;
use crate::service::{rank, Changed, Ctx};
use crate::store::grades::ImportRecord;
use crate::store::releases::Destination;

/// Where a job is.
#[derive(Debug, Clone)]
pub enum JobState {
    Planning,
    /// A preview to look at (and, without errors, to commit).
    Planned,
    /// The file could not be read at all.
    Unreadable(String),
    Committing,
    Committed(Box<ImportRecord>),
    /// The commit was refused (stale, errors) or failed; nothing was written.
    NotCommitted(String),
}

pub struct Job {
    pub id: String,
    pub by: String,
    pub kind: ImportKind,
    pub file_name: String,
    pub created: i64,
    pub progress: Progress,
    /// Grades only: the term to replace, kept for a second plan with a column map.
    pub replace_term: Option<Term>,
    state: Mutex<JobState>,
    /// Signalled whenever `state` changes.
    changed: Condvar,
    plan: Mutex<Option<Arc<Plan>>>,
    /// Set once the committed summary has been shown to the person who committed.
    summary_shown: AtomicBool,
    /// The uploaded file (on disk), read by the plan, by the mapping page while the plan needs
    /// a column map, and again by the commit; let go once the job can no longer be committed.
    file: Mutex<Option<Arc<ImportFile>>>,
}

impl Job {
    pub fn state(&self) -> JobState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(JobState::NotCommitted("internal error".into()))
    }
    fn set(&self, s: JobState) {
        if let Ok(mut st) = self.state.lock() {
            *st = s;
        }
        self.changed.notify_all();
    }

    /// Wait at most `limit` for the job to leave `Planning` (a small file is planned in a few
    /// milliseconds: its preview can then be shown without a progress page first). Returns
    /// whether it has.
    pub fn wait_planned(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        while matches!(*st, JobState::Planning) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match self.changed.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(_) => return false,
            };
        }
        true
    }

    /// The record of this job's commit, the first time it is asked for once committed (the
    /// "已提交 …" summary is shown once, on the page the commit lands on).
    pub fn take_summary(&self) -> Option<ImportRecord> {
        match self.state() {
            JobState::Committed(r) if !self.summary_shown.swap(true, Ordering::SeqCst) => Some(*r),
            _ => None,
        }
    }
    pub fn plan(&self) -> Option<Arc<Plan>> {
        self.plan.lock().ok().and_then(|p| p.clone())
    }

    /// The uploaded file, while the job may still be planned again or committed (the mapping
    /// page reads it).
    pub fn source(&self) -> Option<Arc<ImportFile>> {
        self.file.lock().ok().and_then(|f| f.clone())
    }

    fn let_file_go(&self) {
        if let Ok(mut f) = self.file.lock() {
            *f = None;
        }
    }

    /// Whether this job's commit wrote grade notices (the sender is woken then).
    fn notices_written(&self) -> bool {
        matches!(self.state(), JobState::Committed(r) if r.notices > 0)
    }
}

enum Task {
    Plan {
        job: Arc<Job>,
        map: Option<ChosenMap>,
    },
    Commit {
        job: Arc<Job>,
        notify: bool,
        destination: Destination,
    },
    /// A task that panics, so tests can see the import thread restarted.
    #[cfg(test)]
    Panic,
}

/// Jobs kept; at most this many, oldest dropped first (each may hold its file on disk).
const KEEP: usize = 8;

/// The import service's state: the jobs, the queue to the import thread, and what the thread
/// needs besides the context (the verification key, the notice sender's wake-up).
pub struct ImportJobs {
    jobs: Mutex<BTreeMap<String, Arc<Job>>>,
    order: Mutex<Vec<String>>,
    tx: Mutex<Sender<Task>>,
    rx: Mutex<Receiver<Task>>,
    /// Set once an import thread has started: before that, nothing would read the queue.
    accepting: AtomicBool,
    verify_key: Arc<VerifyKey>,
    wake: Arc<Wake>,
}

impl ImportJobs {
    pub fn new(verify_key: Arc<VerifyKey>, wake: Arc<Wake>) -> ImportJobs {
        let (tx, rx) = channel::<Task>();
        ImportJobs {
            jobs: Mutex::default(),
            order: Mutex::default(),
            tx: Mutex::new(tx),
            rx: Mutex::new(rx),
            accepting: AtomicBool::new(false),
            verify_key,
            wake,
        }
    }

    /// Make the import thread panic (tests of its supervision).
    #[cfg(test)]
    pub(crate) fn panic_worker(&self) -> Result<(), AppError> {
        self.send(Task::Panic)
    }

    /// Take uploads from now on: an import thread is about to run [`Self::run_worker`].
    pub fn open_queue(&self) {
        self.accepting.store(true, Ordering::SeqCst);
    }

    /// The import thread's loop: run queued tasks until `stop` is set; `changed` is told the
    /// students each commit changed (their cached pages are stale). Restartable: when a task
    /// panics and ends the thread, a new thread calling this takes the queue over.
    pub fn run_worker(&self, ctx: &Ctx, stop: &AtomicBool, changed: &dyn Fn(Changed)) {
        self.open_queue();
        while !stop.load(Ordering::SeqCst) {
            let task = {
                let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
                rx.recv_timeout(Duration::from_millis(100))
            };
            match task {
                Ok(Task::Plan { job, map }) => run_plan(ctx, &self.verify_key, &job, map.as_ref()),
                Ok(Task::Commit {
                    job,
                    notify,
                    destination,
                }) => {
                    run_commit(ctx, &self.verify_key, &job, notify, destination, changed);
                    if job.notices_written() {
                        self.wake.notify();
                    }
                }
                #[cfg(test)]
                Ok(Task::Panic) => panic!("a test asked the import thread to panic"),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(id).cloned()
    }

    fn send(&self, task: Task) -> Result<(), AppError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(AppError::Internal(
                "no import thread (not running as a server)".into(),
            ));
        }
        let tx = self
            .tx
            .lock()
            .map_err(|_| AppError::Internal("import queue poisoned".into()))?;
        tx.send(task)
            .map_err(|_| AppError::Internal("the import thread has stopped".into()))
    }

    /// Jobs whose commit is being written now.
    pub fn committing(&self) -> Vec<Arc<Job>> {
        self.jobs
            .lock()
            .map(|m| {
                m.values()
                    .filter(|j| matches!(j.state(), JobState::Committing))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Jobs `by` committed whose summary has not been shown yet, oldest first.
    pub fn unshown_commits(&self, by: &str) -> Vec<Arc<Job>> {
        let (Ok(jobs), Ok(order)) = (self.jobs.lock(), self.order.lock()) else {
            return Vec::new();
        };
        order
            .iter()
            .filter_map(|id| jobs.get(id))
            .filter(|j| {
                j.by == by
                    && !j.summary_shown.load(Ordering::SeqCst)
                    && matches!(j.state(), JobState::Committed(_))
            })
            .cloned()
            .collect()
    }

    /// Queue a file for planning; returns the job to watch.
    pub fn submit(
        &self,
        by: &str,
        kind: ImportKind,
        file_name: &str,
        file: ImportFile,
        replace_term: Option<Term>,
        now: i64,
    ) -> Result<Arc<Job>, AppError> {
        self.submit_mapped(by, kind, file_name, Arc::new(file), replace_term, None, now)
    }

    /// Queue a file for planning with a column map staff chose (`None`: by header names or a
    /// saved preset); returns the job to watch.
    #[allow(clippy::too_many_arguments)]
    pub fn submit_mapped(
        &self,
        by: &str,
        kind: ImportKind,
        file_name: &str,
        file: Arc<ImportFile>,
        replace_term: Option<Term>,
        map: Option<ChosenMap>,
        now: i64,
    ) -> Result<Arc<Job>, AppError> {
        let job = Arc::new(Job {
            id: crate::secret::random_hex::<12>(),
            by: by.to_string(),
            kind,
            file_name: file_name.to_string(),
            created: now,
            progress: Progress::default(),
            replace_term,
            state: Mutex::new(JobState::Planning),
            changed: Condvar::new(),
            plan: Mutex::new(None),
            summary_shown: AtomicBool::new(false),
            file: Mutex::new(Some(file)),
        });
        {
            let mut jobs = self
                .jobs
                .lock()
                .map_err(|_| AppError::Internal("jobs poisoned".into()))?;
            let mut order = self
                .order
                .lock()
                .map_err(|_| AppError::Internal("jobs poisoned".into()))?;
            jobs.insert(job.id.clone(), job.clone());
            order.push(job.id.clone());
            while order.len() > KEEP {
                let old = order.remove(0);
                jobs.remove(&old);
            }
        }
        self.send(Task::Plan {
            job: job.clone(),
            map,
        })?;
        Ok(job)
    }

    /// Queue a planned job's commit, to `destination` (live, or held for a release). Refused
    /// (409) unless it is planned, error-free and not committed yet.
    pub fn commit(
        &self,
        id: &str,
        notify: bool,
        generation: u64,
        destination: Destination,
    ) -> Result<Arc<Job>, AppError> {
        let job = self.get(id).ok_or(AppError::NotFound)?;
        if job.plan().is_some_and(|p| p.generation != generation)
            && matches!(job.state(), JobState::Planned)
        {
            return Err(AppError::Conflict(ImportError::Stale.to_string()));
        }
        {
            let mut st = job
                .state
                .lock()
                .map_err(|_| AppError::Internal("job poisoned".into()))?;
            match &*st {
                JobState::Planned => {}
                JobState::Committing | JobState::Committed(_) => {
                    return Err(AppError::Conflict(
                        "这次导入已经提交过，不能重复提交。".into(),
                    ))
                }
                _ => {
                    return Err(AppError::Conflict(
                        "这份预览不能提交：文件未能读取或提交已失败，请重新上传。".into(),
                    ))
                }
            }
            if job.plan().is_none_or(|p| p.has_errors()) {
                return Err(AppError::Conflict(
                    "文件中有错误，不能提交。请修正后重新上传。".into(),
                ));
            }
            *st = JobState::Committing;
        }
        self.send(Task::Commit {
            job: job.clone(),
            notify,
            destination,
        })?;
        Ok(job)
    }
}

fn run_plan(ctx: &Ctx, verify_key: &VerifyKey, job: &Job, map: Option<&ChosenMap>) {
    let Some(file) = job.source() else {
        job.set(JobState::Unreadable(
            "上传的文件已不在，请重新上传。".into(),
        ));
        return;
    };
    let up = Upload {
        kind: job.kind,
        file_name: &job.file_name,
        bytes: file.bytes(),
        replace_term: job.replace_term,
    };
    let limits = XlsxLimits::for_upload(ctx.config.max_upload_bytes);
    match plan_with_map(&ctx.store, verify_key, &up, map, &limits, &job.progress) {
        Ok(p) => {
            if p.has_errors() {
                let why = format!("有 {} 处错误，未写入", p.errors.len());
                if let Err(e) = ctx.store.record_refused_import(refused_record(
                    &p,
                    &job.by,
                    ctx.clock.now(),
                    &why,
                )) {
                    log::error!("cannot record a refused import: {e}");
                }
                ctx.metrics.event("import", "refused");
            }
            // A file that needs a column map is kept for the mapping page.
            if p.has_errors() && !p.needs_mapping {
                job.let_file_go();
            }
            if let Ok(mut slot) = job.plan.lock() {
                *slot = Some(Arc::new(p));
            }
            job.set(JobState::Planned);
        }
        Err(e) => {
            job.let_file_go();
            ctx.metrics.event("import", "unreadable");
            job.set(JobState::Unreadable(e.to_string()));
        }
    }
}

/// Commit a planned job, live or held for a release; `changed` is told the students whose
/// stored rows changed before the job shows as committed.
fn run_commit(
    ctx: &Ctx,
    verify_key: &VerifyKey,
    job: &Job,
    notify: bool,
    destination: Destination,
    changed: &dyn Fn(Changed),
) {
    let (Some(p), Some(file)) = (job.plan(), job.source()) else {
        job.set(JobState::NotCommitted("预览已失效，请重新上传。".into()));
        return;
    };
    // Whatever happens now, this job is not committed again: its file can go afterwards.
    job.let_file_go();
    job.progress.set(3, 0, p.writes());
    let up = Upload {
        kind: job.kind,
        file_name: &job.file_name,
        bytes: file.bytes(),
        replace_term: job.replace_term,
    };
    let result = commit_to(
        &ctx.store,
        verify_key,
        &p,
        &up,
        &job.by,
        ctx.clock.now(),
        notify,
        destination,
        |tx, id, targets| enqueue_notices(ctx, tx, id, targets),
    );
    match result {
        Ok(done) => {
            if destination == Destination::Live {
                rank::after_grades_changed(ctx, "import", rank::Pages::OfChangedStudents);
            } else {
                ctx.data_written();
            }
            ctx.metrics.event("import", "committed");
            job.progress.set(4, p.writes(), p.writes());
            log::info!(
                "import #{} committed by {}: {} added, {} changed, {} removed ({} students)",
                done.record.id,
                job.by,
                done.record.added,
                done.record.changed,
                done.record.removed,
                done.students.len()
            );
            changed(Changed::Students(done.students));
            job.set(JobState::Committed(Box::new(done.record)));
        }
        Err(ImportError::Stale) => {
            job.set(JobState::NotCommitted(ImportError::Stale.to_string()));
        }
        Err(e) => {
            log::error!("import commit failed: {e}");
            job.set(JobState::NotCommitted(format!(
                "写入失败，未写入任何数据：{e}"
            )));
        }
    }
}

/// Grade notices for the students an import (or a published release) touched, written in its
/// transaction: one per bound student who has not turned notices off, none when no template is
/// configured (the wish to notify stays in the import record).
pub(crate) fn enqueue_notices(
    ctx: &Ctx,
    tx: &redb::WriteTransaction,
    import_id: u64,
    targets: &[super::plan::NoticeTarget],
) -> Result<usize, crate::store::StoreError> {
    if !crate::service::notices::enabled(&ctx.config) {
        return Ok(0);
    }
    let mut wanted = Vec::with_capacity(targets.len());
    for t in targets {
        // A student who turned notices off on the grades page gets none.
        if !crate::store::privacy::notices_off_in(tx, &t.openid)? {
            wanted.push(t);
        }
    }
    let notices: Vec<crate::store::notices::NewNotice> = wanted
        .into_iter()
        .map(|t| crate::store::notices::NewNotice {
            openid: t.openid.clone(),
            student_id: t.student_id.clone(),
            name: t.name.clone(),
            terms: t.terms.clone(),
            courses: t.courses.clone(),
            import_id,
        })
        .collect();
    Ok(crate::store::notices::enqueue_in(tx, &notices)?.len())
}
