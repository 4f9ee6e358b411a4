//! Foreign memory that an IOBuf can reference without copying.

use bytes::Bytes;

/// Memory an IOBuf may reference in place (appended with
/// [`IOBuf::append_user_data`](crate::IOBuf::append_user_data)).
///
/// # Safety
/// Once the value is boxed (it is not moved afterwards), `as_bytes` must
/// return the same slice on every call, and those bytes must stay valid,
/// initialized and unmodified until the value is dropped. Dropping the value
/// is its deleter; it may happen on any thread (hence `Send`), and the bytes
/// may be read from several threads at once (hence `Sync`).
pub unsafe trait UserData: Send + Sync + 'static {
    /// The bytes to reference.
    fn as_bytes(&self) -> &[u8];
}

// SAFETY: a Vec's heap buffer does not move with the Vec and cannot change
// without `&mut`, which nobody has once it is boxed inside a block.
unsafe impl UserData for Vec<u8> {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: as for Vec.
unsafe impl UserData for Box<[u8]> {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: as for Vec.
unsafe impl UserData for String {
    fn as_bytes(&self) -> &[u8] {
        str::as_bytes(self)
    }
}

// SAFETY: `Bytes` is an immutable view whose storage lives as long as the
// handle; it is `Send + Sync`.
unsafe impl UserData for Bytes {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: static immutable memory.
unsafe impl UserData for &'static [u8] {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: the slice is shared and immutable while any Arc clone lives.
unsafe impl UserData for std::sync::Arc<[u8]> {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

/// Owner of raw user memory: runs the deleter when dropped.
pub(crate) struct Deleter(Option<Box<dyn FnOnce() + Send>>);

impl Deleter {
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> Deleter {
        Deleter(Some(Box::new(f)))
    }
}

// SAFETY: `Deleter` has no method taking `&self`; the closure is only
// reachable through `&mut self` in `drop`, so shared references to it cannot
// touch the non-`Sync` closure.
unsafe impl Sync for Deleter {}

impl Drop for Deleter {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
