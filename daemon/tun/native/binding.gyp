{
  "targets": [
    {
      "target_name": "tstier_tun",
      "sources": ["../../native/napi_util.c", "src/tun.c", "src/offload.c", "src/sockopt.c"],
      "include_dirs": ["../../native"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
