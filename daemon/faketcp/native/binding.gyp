{
  "targets": [
    {
      "target_name": "tstier_rawtcp",
      "sources": ["../../native/napi_util.c", "src/rawtcp.c"],
      "include_dirs": ["../../native"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
