{
  "targets": [
    {
      "target_name": "sigprof",
      "sources": [ "<!@(node -p \"require('fs').readdirSync('native').filter(f => f.endsWith('.cc')).map(f => 'native/' + f).join(' ')\")" ],
      "cflags": [ "-Wall", "-Wextra", "-Wno-cast-function-type", "-fno-omit-frame-pointer" ],
      "cflags_cc": [ "-Wall", "-Wextra", "-Wno-cast-function-type", "-fno-omit-frame-pointer" ],
      "libraries": [ "-lrt", "-ldl", "-lpthread" ],
      "conditions": [
        [ "OS!='linux'", { "type": "none" } ]
      ]
    }
  ]
}
