# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sqfuse_global_optspecs
    string join \n h/help V/version
end

function __fish_sqfuse_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sqfuse_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sqfuse_using_subcommand
    set -l cmd (__fish_sqfuse_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sqfuse -n "__fish_sqfuse_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -s V -l version -d 'Print version'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "pack" -d 'Create an image from directories, files or a tar archive (parallel, byte-identical for any -j): sqfuse pack SOURCE... IMAGE'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "mount" -d 'Mount IMAGE read-only on MOUNTPOINT (also: `sqfuse IMAGE MOUNTPOINT`); several images: their merged layers, the first on top'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "umount" -d 'Unmount MOUNTPOINT (also `unmount`): through fusermount3 for your own mounts, directly as root; a busy mountpoint is refused, naming what holds it'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "unmount" -d 'Unmount MOUNTPOINT (also `unmount`): through fusermount3 for your own mounts, directly as root; a busy mountpoint is refused, naming what holds it'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "info" -d 'Show the superblock, compressor and table layout'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "ls" -d 'List a directory (or one file) in the image'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "cat" -d 'Write files\' contents to standard output'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "extract" -d 'Recreate the tree, or PATH in it, under DEST'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "check" -d 'Read and verify everything; exit 0 only for a sound image'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "verity" -d 'Append a dm-verity hash tree to an image (in place, safely: a new file renamed over it) and print its root hash'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "profile" -d 'Record a start-up profile: mount IMAGE on a temporary directory with -o record=PROFILE, run COMMAND there ({} in it is the mountpoint; SQFUSE_MOUNT is set), unmount. Use it with -o preload=, IMAGE.profile or pack --order'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "push" -d 'Publish SquashFS images to a registry as one OCI image whose layers are the images (the first on top, as a layered mount takes them); blobs the registry has are not sent again'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh or fish) to standard output'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "man" -d 'Write the man pages (sqfuse.1 and one per command) into DIR'
complete -c sqfuse -n "__fish_sqfuse_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -s c -l compressor -d 'Compressor: gzip, xz, lz4, zstd or lzo' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -s l -l level -d 'Compression level in the compressor\'s own range (defaults: zstd 3, gzip 9, xz 6, lzo 8; lz4 has none)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l xz-filter -d 'xz branch filter for executables: x86, arm, armthumb, powerpc, ia64, sparc' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -s b -l block-size -d 'Block size, 4K to 1M (suffixes K and M)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -s j -l threads -d 'Compression threads (default: all cores). The image is the same for any value' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l force-uid -d 'Make every entry owned by user N' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l force-gid -d 'Make every entry owned by group N' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l mkfs-time -d 'Image creation time (default: SOURCE_DATE_EPOCH, else the newest mtime in SOURCE)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l all-time -d 'Set every entry\'s mtime to T' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -s e -l exclude -d 'Leave out paths matching GLOB (repeatable; `**` spans directories; a leading \'/\' anchors at SOURCE)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l offset -d 'Write the image N bytes into IMAGE, keeping the bytes an existing IMAGE has before it (needs -f then)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l order -d 'Lay file data out in the order a start-up profile (-o record=) read the files, ahead of all others (repeatable: earlier profiles first)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l whiteouts -d 'With --tar: store the archive\'s whiteouts as overlayfs reads them (devices 0/0, trusted.overlay.opaque), as OCI writes them (.wh.NAME, .wh..wh..opq), or as the archive has them' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l layers -d 'With an OCI SOURCE (oci:DIR[:TAG] or docker://HOST/REPO[:TAG]) and no IMAGE: one image per layer in OUTDIR, named by the layer\'s digest, whiteouts in overlayfs form; layers.txt lists them top first' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l creds -d 'docker://: log in as USER:PASSWORD (default: the login podman, skopeo or docker stored for the registry, else anonymous, with the registry\'s anonymous token if it hands one out)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l verity-salt -d 'The tree\'s salt, in hex (default: 32 random bytes); the same salt gives the same bytes, for reproducible builds' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l verity-roothash -d 'Also write the root hash to FILE' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l no-fragments -d 'Store file tails as partial blocks, not in fragments'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l always-fragments -d 'Put the tails of files larger than a block in fragments too'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l no-dedup -d 'Do not share the data of identical files or tails'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l no-xattrs -d 'Leave out extended attributes'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l no-exports -d 'Leave out the export table (NFS export support)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l no-sparse -d 'Store all-zero blocks as data instead of holes'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l all-root -d 'Make every entry owned by root'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l one-file-system -d 'Do not descend into other filesystems (their mountpoints stay, empty)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -s f -l force -d 'Overwrite IMAGE if it exists'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l skip-unreadable -d 'Skip (with a warning) source entries that cannot be read'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l tar -d 'SOURCE is a tar archive (ustar, gnu or pax; plain, gzip, zstd, xz or bzip2, told by its first bytes; `-` reads standard input)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l layer -d 'SOURCE is a writable mount\'s upper directory (-o upper=DIR): pack its changes as a layer with OCI whiteouts, to stack over the images it was mounted on. Refused while the upper is mounted'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l insecure -d 'docker://: talk plain HTTP to the registry (a local one)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -s q -l quiet -d 'No progress bar, no summary line'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -l verity -d 'Append a dm-verity hash tree (sha256, 4K blocks, format 1) and print its root hash: mount with -o verity=ROOTHASH'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand pack" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand mount" -s o -d 'Mount options, comma-separated (repeatable): offset=N|auto, image_offset=N|auto, subdir=PATH, uid=N, gid=N, timeout=SECS, notify_pipe=PATH, cache_mb=N, threads=N, prefetch=N, fill_ahead_kb=N, no_page_fill, suid, dev (default nosuid,nodev), allow_other, allow_root, auto_unmount, noexec, nonempty, log=FILE|syslog, insecure, creds=FILE, require_verity, fsname=NAME, subtype=NAME, debug, verity=ROOTHASH, verity_roothash_file=FILE, verity_hash=FILE, record=FILE, preload=FILE|none, and what mount(8), fstab and libfuse pass (ro, rw, defaults, noatime, user, noauto, _netdev, x-*, clone_fd, max_threads=N...). See `sqfuse --help`' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand mount" -s f -d 'Stay in the foreground'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand mount" -s s -d 'Serve requests with one thread'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand mount" -s d -d 'Log every request to stderr (implies -f)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand mount" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand umount" -s l -l lazy -d 'Detach it now, though in use; it is unmounted once the last file in it is closed'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand umount" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand unmount" -s l -l lazy -d 'Detach it now, though in use; it is unmounted once the last file in it is closed'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand unmount" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l creds-file -d 'Registry images: log in with the first line of FILE, USER:PASSWORD (default: the login podman, skopeo or docker stored, else anonymous)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l cache-dir -d 'URL images: the chunk cache directory ("none": no disk cache; default $XDG_CACHE_HOME/sqfuse, or $SQFUSE_CACHE_DIR)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l ca-file -d 'URL images: extra PEM certificates to trust (or $SQFUSE_CA_FILE)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l offset -d 'Where the superblock is inside IMAGE: a byte count, or "auto" to find it (AppImage, SIF)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l verity -d 'Verify every block read against the image\'s dm-verity tree and this root hash (hex); a block that does not match is an error' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l verity-roothash-file -d 'The root hash, read from FILE (as --verity-roothash writes it)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l verity-hash -d 'A detached tree (veritysetup format DATA HASH) instead of one appended to the image' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l insecure -d 'Registry images: plain HTTP (a local registry)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -s d -l debug -d 'URL images: log each request (HEAD and byte ranges) on stderr'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -l json -d 'Print one JSON object, for scripts'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand info" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l creds-file -d 'Registry images: log in with the first line of FILE, USER:PASSWORD (default: the login podman, skopeo or docker stored, else anonymous)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l cache-dir -d 'URL images: the chunk cache directory ("none": no disk cache; default $XDG_CACHE_HOME/sqfuse, or $SQFUSE_CACHE_DIR)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l ca-file -d 'URL images: extra PEM certificates to trust (or $SQFUSE_CA_FILE)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l offset -d 'Where the superblock is inside IMAGE: a byte count, or "auto" to find it (AppImage, SIF)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l verity -d 'Verify every block read against the image\'s dm-verity tree and this root hash (hex); a block that does not match is an error' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l verity-roothash-file -d 'The root hash, read from FILE (as --verity-roothash writes it)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l verity-hash -d 'A detached tree (veritysetup format DATA HASH) instead of one appended to the image' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l insecure -d 'Registry images: plain HTTP (a local registry)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -s d -l debug -d 'URL images: log each request (HEAD and byte ranges) on stderr'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -s l -d 'Long listing: mode, owner, size, mtime, link target'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -s R -d 'Recurse: print every path below PATH'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -l json -d 'Print a JSON array of entries (every field of -l), for scripts'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand ls" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -l creds-file -d 'Registry images: log in with the first line of FILE, USER:PASSWORD (default: the login podman, skopeo or docker stored, else anonymous)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -l cache-dir -d 'URL images: the chunk cache directory ("none": no disk cache; default $XDG_CACHE_HOME/sqfuse, or $SQFUSE_CACHE_DIR)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -l ca-file -d 'URL images: extra PEM certificates to trust (or $SQFUSE_CA_FILE)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -l offset -d 'Where the superblock is inside IMAGE: a byte count, or "auto" to find it (AppImage, SIF)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -l verity -d 'Verify every block read against the image\'s dm-verity tree and this root hash (hex); a block that does not match is an error' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -l verity-roothash-file -d 'The root hash, read from FILE (as --verity-roothash writes it)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -l verity-hash -d 'A detached tree (veritysetup format DATA HASH) instead of one appended to the image' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -l insecure -d 'Registry images: plain HTTP (a local registry)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -s d -l debug -d 'URL images: log each request (HEAD and byte ranges) on stderr'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand cat" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l creds-file -d 'Registry images: log in with the first line of FILE, USER:PASSWORD (default: the login podman, skopeo or docker stored, else anonymous)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l cache-dir -d 'URL images: the chunk cache directory ("none": no disk cache; default $XDG_CACHE_HOME/sqfuse, or $SQFUSE_CACHE_DIR)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l ca-file -d 'URL images: extra PEM certificates to trust (or $SQFUSE_CA_FILE)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l offset -d 'Where the superblock is inside IMAGE: a byte count, or "auto" to find it (AppImage, SIF)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l verity -d 'Verify every block read against the image\'s dm-verity tree and this root hash (hex); a block that does not match is an error' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l verity-roothash-file -d 'The root hash, read from FILE (as --verity-roothash writes it)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l verity-hash -d 'A detached tree (veritysetup format DATA HASH) instead of one appended to the image' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l insecure -d 'Registry images: plain HTTP (a local registry)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -s d -l debug -d 'URL images: log each request (HEAD and byte ranges) on stderr'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -s f -l force -d 'Overwrite entries that already exist in DEST'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -l no-xattrs -d 'Do not restore extended attributes'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -s v -l verbose -d 'Report skipped entries and warnings'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand extract" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -l creds-file -d 'Registry images: log in with the first line of FILE, USER:PASSWORD (default: the login podman, skopeo or docker stored, else anonymous)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -l cache-dir -d 'URL images: the chunk cache directory ("none": no disk cache; default $XDG_CACHE_HOME/sqfuse, or $SQFUSE_CACHE_DIR)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -l ca-file -d 'URL images: extra PEM certificates to trust (or $SQFUSE_CA_FILE)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -l offset -d 'Where the superblock is inside IMAGE: a byte count, or "auto" to find it (AppImage, SIF)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -l verity -d 'Verify every block read against the image\'s dm-verity tree and this root hash (hex); a block that does not match is an error' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -l verity-roothash-file -d 'The root hash, read from FILE (as --verity-roothash writes it)' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -l verity-hash -d 'A detached tree (veritysetup format DATA HASH) instead of one appended to the image' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -l insecure -d 'Registry images: plain HTTP (a local registry)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -s d -l debug -d 'URL images: log each request (HEAD and byte ranges) on stderr'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand check" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand verity" -l offset -d 'Where the superblock is inside IMAGE: a byte count, or "auto"' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand verity" -l salt -d 'The salt, in hex (default: 32 random bytes)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand verity" -l roothash -d 'Also write the root hash to FILE' -r -F
complete -c sqfuse -n "__fish_sqfuse_using_subcommand verity" -s f -l force -d 'Replace a tree the image already has'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand verity" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand profile" -s o -d 'More mount options (as for mount)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand profile" -s f -l force -d 'Overwrite PROFILE if it exists'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand profile" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand push" -l creds -d 'Log in as USER:PASSWORD (default: the login podman, skopeo or docker stored for the registry, else anonymous)' -r
complete -c sqfuse -n "__fish_sqfuse_using_subcommand push" -l verity -d 'Write each layer\'s dm-verity root hash as an annotation (every image must carry an appended tree: pack --verity, sqfuse verity)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand push" -l insecure -d 'Talk plain HTTP to the registry (a local one)'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand push" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand completions" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand man" -s h -l help -d 'Print help'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "pack" -d 'Create an image from directories, files or a tar archive (parallel, byte-identical for any -j): sqfuse pack SOURCE... IMAGE'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "mount" -d 'Mount IMAGE read-only on MOUNTPOINT (also: `sqfuse IMAGE MOUNTPOINT`); several images: their merged layers, the first on top'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "umount" -d 'Unmount MOUNTPOINT (also `unmount`): through fusermount3 for your own mounts, directly as root; a busy mountpoint is refused, naming what holds it'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "info" -d 'Show the superblock, compressor and table layout'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "ls" -d 'List a directory (or one file) in the image'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "cat" -d 'Write files\' contents to standard output'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "extract" -d 'Recreate the tree, or PATH in it, under DEST'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "check" -d 'Read and verify everything; exit 0 only for a sound image'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "verity" -d 'Append a dm-verity hash tree to an image (in place, safely: a new file renamed over it) and print its root hash'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "profile" -d 'Record a start-up profile: mount IMAGE on a temporary directory with -o record=PROFILE, run COMMAND there ({} in it is the mountpoint; SQFUSE_MOUNT is set), unmount. Use it with -o preload=, IMAGE.profile or pack --order'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "push" -d 'Publish SquashFS images to a registry as one OCI image whose layers are the images (the first on top, as a layered mount takes them); blobs the registry has are not sent again'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh or fish) to standard output'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "man" -d 'Write the man pages (sqfuse.1 and one per command) into DIR'
complete -c sqfuse -n "__fish_sqfuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount umount info ls cat extract check verity profile push completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
