//! Errors: the library's status code as an enum plus its detailed per-thread message.
use std::ffi::CStr;
use std::fmt;

use vwn_sys as sys;

/// A failure status of libvwn (every `VWN_ERR_*` of `vwn.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    InvalidArg,
    BadHandle,
    Io,
    BadMagic,
    BadVersion,
    Truncated,
    BadFormat,
    Unsupported,
    BadModel,
    OutOfMemory,
    TokenOutOfRange,
    ContextFull,
    BatchTooLarge,
    NotKept,
    BufferTooSmall,
    NoMtp,
    NoDraft,
    StateMismatch,
    Checksum,
    Aborted,
    Internal,
    /// A status this version of the bindings does not know (a newer library).
    Unknown(i32),
}

impl Status {
    /// The status for a raw `vwn_status`; `None` for `VWN_OK`.
    pub fn from_raw(raw: sys::vwn_status) -> Option<Status> {
        use Status::*;
        Some(match raw {
            sys::VWN_OK => return None,
            sys::VWN_ERR_INVALID_ARG => InvalidArg,
            sys::VWN_ERR_BAD_HANDLE => BadHandle,
            sys::VWN_ERR_IO => Io,
            sys::VWN_ERR_BAD_MAGIC => BadMagic,
            sys::VWN_ERR_BAD_VERSION => BadVersion,
            sys::VWN_ERR_TRUNCATED => Truncated,
            sys::VWN_ERR_BAD_FORMAT => BadFormat,
            sys::VWN_ERR_UNSUPPORTED => Unsupported,
            sys::VWN_ERR_BAD_MODEL => BadModel,
            sys::VWN_ERR_OUT_OF_MEMORY => OutOfMemory,
            sys::VWN_ERR_TOKEN_OUT_OF_RANGE => TokenOutOfRange,
            sys::VWN_ERR_CONTEXT_FULL => ContextFull,
            sys::VWN_ERR_BATCH_TOO_LARGE => BatchTooLarge,
            sys::VWN_ERR_NOT_KEPT => NotKept,
            sys::VWN_ERR_BUFFER_TOO_SMALL => BufferTooSmall,
            sys::VWN_ERR_NO_MTP => NoMtp,
            sys::VWN_ERR_NO_DRAFT => NoDraft,
            sys::VWN_ERR_STATE_MISMATCH => StateMismatch,
            sys::VWN_ERR_CHECKSUM => Checksum,
            sys::VWN_ERR_ABORTED => Aborted,
            sys::VWN_ERR_INTERNAL => Internal,
            other => Unknown(other),
        })
    }

    /// The raw `vwn_status` value.
    pub fn raw(self) -> sys::vwn_status {
        use Status::*;
        match self {
            InvalidArg => sys::VWN_ERR_INVALID_ARG,
            BadHandle => sys::VWN_ERR_BAD_HANDLE,
            Io => sys::VWN_ERR_IO,
            BadMagic => sys::VWN_ERR_BAD_MAGIC,
            BadVersion => sys::VWN_ERR_BAD_VERSION,
            Truncated => sys::VWN_ERR_TRUNCATED,
            BadFormat => sys::VWN_ERR_BAD_FORMAT,
            Unsupported => sys::VWN_ERR_UNSUPPORTED,
            BadModel => sys::VWN_ERR_BAD_MODEL,
            OutOfMemory => sys::VWN_ERR_OUT_OF_MEMORY,
            TokenOutOfRange => sys::VWN_ERR_TOKEN_OUT_OF_RANGE,
            ContextFull => sys::VWN_ERR_CONTEXT_FULL,
            BatchTooLarge => sys::VWN_ERR_BATCH_TOO_LARGE,
            NotKept => sys::VWN_ERR_NOT_KEPT,
            BufferTooSmall => sys::VWN_ERR_BUFFER_TOO_SMALL,
            NoMtp => sys::VWN_ERR_NO_MTP,
            NoDraft => sys::VWN_ERR_NO_DRAFT,
            StateMismatch => sys::VWN_ERR_STATE_MISMATCH,
            Checksum => sys::VWN_ERR_CHECKSUM,
            Aborted => sys::VWN_ERR_ABORTED,
            Internal => sys::VWN_ERR_INTERNAL,
            Unknown(raw) => raw,
        }
    }

    /// The library's static description, e.g. `"VWN_ERR_TRUNCATED: file truncated"`.
    pub fn description(self) -> &'static str {
        // SAFETY: vwn_status_string returns a static NUL-terminated string, never NULL.
        unsafe { CStr::from_ptr(sys::vwn_status_string(self.raw())) }.to_str().unwrap_or("VWN_ERR_?")
    }
}

/// An error returned by libvwn: the status and the detailed message of the failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
}

impl Error {
    /// An error with an explicit message (used for failures detected by the bindings themselves,
    /// such as a path with a NUL byte).
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }

    /// The error of the last failed libvwn call on this thread, with the given status.
    pub(crate) fn last(status: Status) -> Error {
        // SAFETY: vwn_last_error returns thread-local storage, valid until the next libvwn call on
        // this thread; it is copied before any other call.
        let msg = unsafe { CStr::from_ptr(sys::vwn_last_error()) };
        Error { status, message: msg.to_string_lossy().into_owned() }
    }

    /// The error of the last failed libvwn call on this thread, with the status the library
    /// recorded for it (`vwn_last_status`): for the calls that return a count, not a status.
    pub(crate) fn last_call() -> Error {
        // SAFETY: vwn_last_status reads thread-local storage and takes no arguments.
        let raw = unsafe { sys::vwn_last_status() };
        Error::last(Status::from_raw(raw).unwrap_or(Status::InvalidArg))
    }

    /// The status code.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The library's detailed message (names the file, tensor, token... that failed).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.description(), self.message)
    }
}

impl std::error::Error for Error {}

/// `Result<T, vwn::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// Turns a raw status into a Result, reading the message of a failure on this thread.
pub(crate) fn check(raw: sys::vwn_status) -> Result<()> {
    match Status::from_raw(raw) {
        None => Ok(()),
        Some(status) => Err(Error::last(status)),
    }
}
