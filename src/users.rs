//! User and group names looked up in the system's databases (through
//! libc, so NSS and fakeroot's view apply).

use std::ffi::CString;

/// The uid of user `name`, if there is one.
pub fn uid_by_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: zeroed passwd is a valid out-parameter; buffers are valid
    // for the lengths passed and outlive the call.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        loop {
            let r = libc::getpwnam_r(
                c.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut out,
            );
            if r == libc::ERANGE && buf.len() < 1 << 20 {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            return (r == 0 && !out.is_null()).then_some(pw.pw_uid);
        }
    }
}

/// The gid of group `name`, if there is one.
pub fn gid_by_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: as in uid_by_name.
    unsafe {
        let mut gr: libc::group = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        loop {
            let r = libc::getgrnam_r(
                c.as_ptr(),
                &mut gr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut out,
            );
            if r == libc::ERANGE && buf.len() < 1 << 20 {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            return (r == 0 && !out.is_null()).then_some(gr.gr_gid);
        }
    }
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
