{
  "targets": [
    {
      "target_name": "tstier_peer",
      "sources": ["../../native/napi_util.c", "src/addon.c", "src/et_aead.c", "src/icmp.c", "src/udp.c", "src/udp_recv.c"],
      "include_dirs": ["../../native"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
