from abcscale.cli import main

main()
