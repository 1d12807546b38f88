from abcscale._entry import main

main()
