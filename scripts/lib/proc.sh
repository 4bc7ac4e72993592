# Process helpers shared by the scripts that run a server in the
# background (scripts/kafka/broker.sh, scripts/minio/minio.sh). Source it;
# it defines functions only.

# pid_of prints the pid in pidfile $1 when that process is alive and its
# command line holds $2 (a stale pid file may name a recycled pid).
pid_of() {
	local p
	[ -f "$1" ] || return 1
	p=$(cat "$1")
	[ -n "$p" ] && [ -r "/proc/$p/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF "$2" || return 1
	echo "$p"
}

# alive succeeds while process $1 runs (a zombie does not count).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# listening succeeds when something accepts connections on 127.0.0.1:$1.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
