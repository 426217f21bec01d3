bp::network! {
    struct Net {
        input x: [4];
        let h = lienar(x, 3);
        output h;
    }
}

fn main() {}
