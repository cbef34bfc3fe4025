"""Capture files and link layers: bytes of pcap/pcapng/OSBiz traces → transport-level packets."""
