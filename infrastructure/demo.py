"""``make demo``: until the local mode runs the platform, print what would be deployed."""

from infrastructure.summary import main

if __name__ == "__main__":
    main()
