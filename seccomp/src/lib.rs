//! burrow-seccomp: the default seccomp profile containers get, and (with socket bypass) the
//! seccomp user-notification plumbing.
