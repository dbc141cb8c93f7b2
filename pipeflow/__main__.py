from pipeflow.cli.app import main

main()
