{
  "targets": [
    {
      "target_name": "tstier_peer",
      "sources": ["src/addon.c", "src/aead.c", "src/icmp.c", "src/udp.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
