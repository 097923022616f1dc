from langtrim.runtime.server.process import main

main()
