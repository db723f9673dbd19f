# When the kubelet started and when kubelet.conf ($1) and its client certificate ($2) were last written, in seconds
# since the epoch to the hundredth (null: not running, or absent), as one JSON line. The kubelet reads both only at
# start. Read-only.
# The start comes from the clock ticks after boot of /proc/PID/stat and the boot time now minus /proc/uptime (both to
# the hundredth): /proc/stat's btime is whole seconds, and a kubelet restarted in the second its certificate was
# written would read as started before it (seen on a real worker: "started 22:36:25Z, not after ... 22:36:25Z").
pid=$(systemctl show --property MainPID --value kubelet 2>/dev/null)
started=null
if [ "${pid:-0}" -gt 0 ] 2>/dev/null && [ -r "/proc/$pid/stat" ]; then
  # field 22 of /proc/PID/stat (clock ticks after boot), counted after the command name, which may hold spaces
  ticks=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
  started=$(awk -v now="$(date +%s.%N)" -v ticks="$ticks" -v hz="$(getconf CLK_TCK)" \
    '{ printf "%.2f", now - $1 + ticks / hz }' /proc/uptime)
fi
written() { stat -L -c %.2Y "$1" 2>/dev/null || echo null; }
printf '{"started": %s, "kubeconfig_written": %s, "client_written": %s}\n' "$started" "$(written "$1")" "$(written "$2")"
