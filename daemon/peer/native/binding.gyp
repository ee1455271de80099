{
  "targets": [
    {
      "target_name": "tstier_aead",
      "sources": ["src/aead.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
