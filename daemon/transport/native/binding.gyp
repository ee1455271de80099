{
  "targets": [
    {
      "target_name": "tstier_transport",
      "sources": ["../../native/napi_util.c", "src/addon.c", "src/cfb.c", "src/cfb_lanes.c", "src/crc32.c", "src/gf.c"],
      "include_dirs": ["../../native"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
