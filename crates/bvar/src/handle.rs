//! The methods every variable handle shares. Handles are `Arc`s around an
//! inner value that implements [`Variable`](crate::Variable): cloning is
//! cheap, updates take `&self`, and dropping the last clone hides the
//! variable's names.

/// `expose` and `hide` for a handle whose `inner: Arc<_>` has an
/// `exposure: Exposure` field and implements `Variable`.
macro_rules! expose_methods {
    () => {
        /// Exposes this variable under `name` (normalized as
        /// [`registry::expose`](crate::registry::expose) describes). A
        /// variable may have several names; all are hidden when the last
        /// clone of the handle is dropped. Fails if a live variable
        /// already has the name.
        pub fn expose(&self, name: &str) -> Result<(), $crate::ExposeError> {
            let weak = ::std::sync::Arc::downgrade(&self.inner);
            let weak: ::std::sync::Weak<dyn $crate::Variable> = weak;
            self.inner.exposure.expose(name, weak)
        }

        /// Exposes this variable as one label combination of the family
        /// `family`: `/vars` lists it as `family{label="value",...}`
        /// ([`registry::labeled_name`](crate::registry::labeled_name)) and
        /// `/metrics` writes it as a labeled sample of `family`. Usually
        /// called by [`MVariable`](crate::MVariable).
        pub fn expose_labeled(
            &self,
            family: &str,
            labels: &[(&str, &str)],
        ) -> Result<(), $crate::ExposeError> {
            let weak = ::std::sync::Arc::downgrade(&self.inner);
            let weak: ::std::sync::Weak<dyn $crate::Variable> = weak;
            self.inner.exposure.expose_labeled(family, labels, weak)
        }

        /// Whether `other` is a clone of this handle (the same variable).
        pub fn same_as(&self, other: &Self) -> bool {
            ::std::sync::Arc::ptr_eq(&self.inner, &other.inner)
        }

        /// Hides every name this variable is exposed under.
        pub fn hide(&self) {
            self.inner.exposure.hide()
        }
    };
}
pub(crate) use expose_methods;
