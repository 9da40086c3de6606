#!/usr/bin/env bash
# Boots Debian's systemd as PID 1 of private namespaces, on a throw-away root: the host's / below,
# read-only, with a tmpfs above it that holds `cmake --install` of the build under test. Run by
# real_systemd_test.py as the first process of
#   unshare --fork --pid --mount --uts --ipc --net --cgroup --propagation private
# (so this shell is PID 1 and `exec systemd` keeps it so). Nothing here writes to the host: every
# mount is made in the private mount namespace, every file lands on the tmpfs, and the host's
# kernel state is out of reach (/proc/sys and /sys read-only, no module loading, no clock).
#
#   boot.sh BUILD_DIR STAGE_DIR
# STAGE_DIR holds what the test adds to the image (etc/, a test target, the trainer), copied in
# over the installed files.
set -euo pipefail
build_dir=$1
stage_dir=$2

mount --make-rprivate /
# A tmpfs on /mnt (in this namespace only) holds the overlay's upper layer and the new root.
mount -t tmpfs -o mode=0755,size=512m vapor-systemd-test /mnt
mkdir /mnt/upper /mnt/work /mnt/root
mount -t overlay overlay -o lowerdir=/,upperdir=/mnt/upper,workdir=/mnt/work /mnt/root
root=/mnt/root

# `cmake --install` writes install_manifest.txt into the build folder: an overlay on it (in this
# namespace only) takes that write onto the tmpfs, and the host's build tree stays as it was.
mkdir /mnt/build-upper /mnt/build-work
mount -t overlay overlay \
  -o "lowerdir=$build_dir,upperdir=/mnt/build-upper,workdir=/mnt/build-work" "$build_dir"
DESTDIR=$root cmake --install "$build_dir" --prefix /usr >/dev/null
umount "$build_dir"
cp -a "$stage_dir"/. "$root"/

# The kernel's interfaces: our own proc (of the new PID namespace), sys and its sysctls
# read-only, the cgroup2 hierarchy rooted at the test's own cgroup (the cgroup namespace), and a
# minimal /dev of our own.
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --bind /proc/sys "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup"
mount -t tmpfs -o mode=0755,nosuid,size=4m dev "$root/dev"
for node in null zero full random urandom tty; do
  touch "$root/dev/$node"
  mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o mode=0755,nosuid,nodev run "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$root/tmp"

# Units of the host that have no business in a test boot: they would act on the host's devices,
# modules, clock, sysctls or filesystems (each would fail here anyway; masking keeps the boot
# short and quiet). Generators read the host's fstab, crypttab and SysV scripts: masked too.
mask() { ln -sf /dev/null "$root/etc/systemd/system/$1"; }
for unit in systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
    systemd-modules-load.service systemd-sysctl.service systemd-binfmt.service \
    systemd-timesyncd.service systemd-random-seed.service systemd-hwdb-update.service \
    systemd-remount-fs.service systemd-fsck-root.service systemd-networkd.service \
    systemd-resolved.service systemd-logind.service getty.target console-getty.service \
    cron.service ssh.service sshd.service postgresql.service docker.service containerd.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    systemd-tmpfiles-clean.timer man-db.timer dpkg-db-backup.timer; do
  mask "$unit"
done
mkdir -p "$root/etc/systemd/system-generators"
for generator in /lib/systemd/system-generators/*; do
  ln -sf /dev/null "$root/etc/systemd/system-generators/$(basename "$generator")"
done

cd "$root"
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
rmdir /oldroot
cd /
# `container=` tells systemd it runs in a container (as systemd-nspawn does): no hardware units.
# The bounding set loses what could reach the host from here (modules, clock, raw I/O).
exec env -i container=vapor-systemd-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  setpriv --bounding-set=-sys_module,-sys_time,-sys_rawio,-sys_boot,-wake_alarm \
  /lib/systemd/systemd --unit=vapor-test.target --show-status=no
