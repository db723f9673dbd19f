# When the kubelet started and when kubelet.conf ($1) and its client certificate ($2) were last written, in seconds
# since the epoch (null: not running, or absent), as one JSON line. The kubelet reads both only at start. Read-only.
pid=$(systemctl show --property MainPID --value kubelet 2>/dev/null)
started=null
if [ "${pid:-0}" -gt 0 ] 2>/dev/null && [ -r "/proc/$pid/stat" ]; then
  # field 22 of /proc/PID/stat (clock ticks after boot), counted after the command name, which may hold spaces
  ticks=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
  btime=$(sed -n 's/^btime //p' /proc/stat)
  started=$((btime + ticks / $(getconf CLK_TCK)))
fi
written() { stat -L -c %Y "$1" 2>/dev/null || echo null; }
printf '{"started": %s, "kubeconfig_written": %s, "client_written": %s}\n' "$started" "$(written "$1")" "$(written "$2")"
