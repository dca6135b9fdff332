from telportal.cli import main

main()
