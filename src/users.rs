//! User and group names looked up in the system's databases (through
//! libc, so NSS and fakeroot's view apply).

use std::ffi::CString;

/// Runs a `get*nam_r` lookup with a buffer that grows on ERANGE (to 1 MiB).
fn lookup<T>(
    name: &str,
    call: impl Fn(*const libc::c_char, &mut [u8]) -> (i32, Option<T>),
) -> Option<T> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        match call(c.as_ptr(), &mut buf) {
            (libc::ERANGE, _) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            (0, found) => return found,
            _ => return None,
        }
    }
}

/// The uid of user `name`, if there is one.
pub fn uid_by_name(name: &str) -> Option<u32> {
    lookup(name, |c, buf| {
        // SAFETY: zeroed passwd is a valid out-parameter; the buffer is
        // valid for its length and outlives the call.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut out = std::ptr::null_mut();
            let r = libc::getpwnam_r(c, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out);
            (r, (!out.is_null()).then_some(pw.pw_uid))
        }
    })
}

/// The gid of group `name`, if there is one.
pub fn gid_by_name(name: &str) -> Option<u32> {
    lookup(name, |c, buf| {
        // SAFETY: as in uid_by_name.
        unsafe {
            let mut gr: libc::group = std::mem::zeroed();
            let mut out = std::ptr::null_mut();
            let r = libc::getgrnam_r(c, &mut gr, buf.as_mut_ptr().cast(), buf.len(), &mut out);
            (r, (!out.is_null()).then_some(gr.gr_gid))
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_zero_and_unknown_names_are_none() {
        assert_eq!(super::uid_by_name("root"), Some(0));
        assert_eq!(super::gid_by_name("root"), Some(0));
        assert_eq!(super::uid_by_name("no-such-user-sqfuse"), None);
        assert_eq!(super::uid_by_name("a\0b"), None);
    }
}
