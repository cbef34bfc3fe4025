"""Media plane: RTP/RTCP parsing (sans-IO) and per-stream statistics matching Wireshark's RTP analysis."""
