{
  "targets": [
    {
      "target_name": "tstier_tun",
      "sources": ["src/tun.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
